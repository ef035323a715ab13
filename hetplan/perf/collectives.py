"""Tensor-parallel all-reduce time: a measured table where one exists, else a model of the
algorithm the engine runs for that message size and link.

vLLM (0.8 and later) reduces small activations (decode steps, short prefills) with its own
"custom all-reduce" when the TP group is fully connected: NVLink through NVSwitch, AMD xGMI,
or any 2-GPU pair. For a message of b bytes over n GPUs, with per-direction link bandwidth B
(achieved) and a per-launch latency L:

    one-shot: every rank reads all n-1 peers' buffers and sums     L + (n-1) b / B
    two-shot: reduce-scatter then all-gather of b/n slices         2 L + 2 (n-1)/n b / B

and it picks the faster, so the model takes the minimum. Above CUSTOM_ALLREDUCE_MAX_BYTES
(vLLM's default buffer, 8 MiB) and on PCIe groups of more than two GPUs it falls back to
NCCL, modelled as a ring: 2(n-1)/n b / (B e) + 2(n-1) L, with e the calibration's collective
efficiency for that TP size (fitted to NCCL-sized messages). Before issue 15 every message
was charged the ring, 2(n-1) latencies each: 14 at TP8, which made TP8 decode of an
80-layer model ~6 ms slower per step than today's engines measure.

Approximate: symmetric-memory and multimem all-reduce variants (vLLM on Hopper/Blackwell
with NVSwitch) are not modelled apart; the per-launch latency is the link catalog's
intra-node latency, not a per-GPU measurement. Where `catalogs/calibration/optables/` holds a
measured table for the GPU and TP size, that table wins (`allreduce`).
"""

from __future__ import annotations

from dataclasses import dataclass

from hetplan.perf.links import Link

CUSTOM_ALLREDUCE_MAX_BYTES = 8 * 1024 * 1024
"""vLLM's custom all-reduce buffer (`CustomAllreduce(max_size=8192 * 1024)`, vLLM 0.33);
larger messages go to NCCL."""
CUSTOM_ALLREDUCE_TP_SIZES = (2, 4, 6, 8)
"""TP sizes vLLM's custom all-reduce kernel accepts within one node (vLLM 0.33 also lists
16 for multi-node NVLink domains, which hetplan does not place a TP group across)."""
FULLY_CONNECTED_LINK_PREFIXES = ("nvlink", "xgmi")
"""Intra-node link kinds (catalog `intra_node_link`) where every GPU reaches every other at
full link bandwidth (NVSwitch, xGMI mesh): the precondition of the custom all-reduce beyond
two GPUs."""

SOURCE_ONE_SHOT = "model:custom-allreduce one-shot"
SOURCE_TWO_SHOT = "model:custom-allreduce two-shot"
SOURCE_RING = "model:nccl ring"


@dataclass(frozen=True)
class CollectiveTime:
    seconds: float
    source: str


def ring_allreduce_s(nbytes: float, n: int, link: Link, efficiency: float) -> float:
    """Ring all-reduce of `nbytes` over n GPUs: 2(n-1)/n of the data crosses each link,
    in 2(n-1) latency-bound steps."""
    if n <= 1 or nbytes <= 0:
        return 0.0
    bw = link.bytes_per_s_at(efficiency)
    return 2.0 * (n - 1) / n * nbytes / bw + 2.0 * (n - 1) * link.latency_us * 1e-6


def uses_custom_allreduce(nbytes: float, n: int, link_kind: str) -> bool:
    """Whether vLLM would reduce this message with its custom all-reduce (see module doc)."""
    if n not in CUSTOM_ALLREDUCE_TP_SIZES or nbytes > CUSTOM_ALLREDUCE_MAX_BYTES:
        return False
    return n == 2 or link_kind.lower().startswith(FULLY_CONNECTED_LINK_PREFIXES)


def allreduce_model(nbytes: float, n: int, link: Link, link_kind: str,
                    ring_efficiency: float) -> CollectiveTime:
    """Modelled time of one all-reduce of `nbytes` over n GPUs joined by `link` (the GPU's
    intra-node link; `link_kind` is the catalog's `intra_node_link`)."""
    if n <= 1 or nbytes <= 0:
        return CollectiveTime(0.0, "none")
    if not uses_custom_allreduce(nbytes, n, link_kind):
        return CollectiveTime(ring_allreduce_s(nbytes, n, link, ring_efficiency), SOURCE_RING)
    bw = link.achieved_bytes_per_s
    lat = link.latency_us * 1e-6
    one = lat + (n - 1) * nbytes / bw
    two = 2 * lat + 2.0 * (n - 1) / n * nbytes / bw
    return CollectiveTime(one, SOURCE_ONE_SHOT) if one <= two else \
        CollectiveTime(two, SOURCE_TWO_SHOT)
