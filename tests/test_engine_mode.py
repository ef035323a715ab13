"""Perf model v2 (issue 15): the engine's all-reduce algorithm per message size and link,
CUDA-graph versus eager steps, and per-op sources in `estimate --json`."""

from __future__ import annotations

import json

import pytest

from hetplan.catalog import load_catalog
from hetplan.emit.serve import EmitOptions, engine_flags, pool_settings
from hetplan.engine_limits import EngineLimits
from hetplan.model import load_model
from hetplan.perf import PerfModel, ReplicaShape
from hetplan.perf.collectives import (CUSTOM_ALLREDUCE_MAX_BYTES, SOURCE_ONE_SHOT,
                                      SOURCE_RING, SOURCE_TWO_SHOT, allreduce_model,
                                      ring_allreduce_s, uses_custom_allreduce)
from hetplan.perf.links import load_links
from hetplan.plan import load_plan
from tests.cli_harness import run_main

CAT = load_catalog()


def _link(gpu: str):
    return load_links().intra_node(CAT.gpu(gpu))


@pytest.mark.parametrize("gpu,tp,nbytes,custom", [
    ("H100-SXM", 8, 16 * 1024, True),            # decode message on NVSwitch
    ("H100-SXM", 8, CUSTOM_ALLREDUCE_MAX_BYTES + 1, False),   # beyond vLLM's buffer: NCCL
    ("H100-SXM", 3, 16 * 1024, False),           # vLLM's kernel takes 2, 4, 6, 8 GPUs
    ("L40S", 2, 16 * 1024, True),                # any 2-GPU pair
    ("L40S", 4, 16 * 1024, False),               # PCIe beyond 2 GPUs is not fully connected
    ("MI300X", 8, 16 * 1024, True),              # xGMI mesh
])
def test_custom_allreduce_follows_vllms_rules(gpu, tp, nbytes, custom):
    g = CAT.gpu(gpu)
    assert uses_custom_allreduce(nbytes, tp, g.intra_node_link) is custom
    t = allreduce_model(nbytes, tp, _link(gpu), g.intra_node_link, 0.8)
    assert (t.source != SOURCE_RING) is custom


def test_one_shot_for_small_two_shot_for_large_messages():
    """One-shot moves (n-1) b per GPU in one latency, two-shot 2(n-1)/n b in two: the first
    wins while (n-1) b (1 - 2/n) / B is below one latency, i.e. for small messages."""
    link, kind = _link("H100-SXM"), CAT.gpu("H100-SXM").intra_node_link
    bw, lat = link.achieved_bytes_per_s, link.latency_us * 1e-6
    crossover = lat / (7 * (1 - 2 / 8)) * bw          # bytes where the two are equal
    small = allreduce_model(crossover / 4, 8, link, kind, 0.8)
    large = allreduce_model(crossover * 4, 8, link, kind, 0.8)
    assert small.source == SOURCE_ONE_SHOT and large.source == SOURCE_TWO_SHOT
    assert small.seconds == pytest.approx(lat + 7 * crossover / 4 / bw)
    assert large.seconds == pytest.approx(2 * lat + 2 * 7 / 8 * crossover * 4 / bw)


def test_decode_allreduce_no_longer_pays_ring_latencies():
    """The issue's cause: a ring charged 2(n-1) link latencies per all-reduce (14 at TP8);
    the custom all-reduce charges one or two."""
    link, kind = _link("H100-SXM"), CAT.gpu("H100-SXM").intra_node_link
    nbytes = 8192 * 2                                  # one token of Llama-70B, bf16
    ring = ring_allreduce_s(nbytes, 8, link, 0.8)
    custom = allreduce_model(nbytes, 8, link, kind, 0.8).seconds
    assert ring >= 14 * link.latency_us * 1e-6
    assert custom <= 2 * link.latency_us * 1e-6 + 7 * nbytes / link.achieved_bytes_per_s


def test_graph_capture_size_follows_vllm_default_rule():
    lim = EngineLimits()
    assert lim.graph_capture_max_tokens(False) == 512
    assert lim.graph_capture_max_tokens(True) == 1024
    assert EngineLimits(max_num_seqs=64).graph_capture_max_tokens(False) == 128
    assert EngineLimits(cuda_graph_max_tokens=256).graph_capture_max_tokens(True) == 256
    assert EngineLimits(enforce_eager=True).graph_capture_max_tokens(True) == 0
    assert CAT.gpu("B200").datacenter_blackwell
    assert not CAT.gpu("RTX-PRO-6000-Blackwell").datacenter_blackwell
    assert not CAT.gpu("H100-SXM").datacenter_blackwell


def test_eager_steps_expose_launches_only_beyond_gpu_work():
    """Batch-1 decode of an 80-layer model: under a CUDA graph no launch cost; eager, the
    CPU's layer launches show where they exceed the GPU's work, and a long prefill (GPU
    work >> launches) is the same either way."""
    m = load_model("llama-3.1-70b")
    s = ReplicaShape("H100-SXM", 4)
    graph = PerfModel(m, CAT)
    eager = graph.with_limits(EngineLimits(enforce_eager=True))
    cal = graph.calibration("H100-SXM").model_copy(update={"layer_overhead_us": 500.0})
    graph.calibrations = eager.calibrations = {"H100-SXM": cal}
    g, e = graph.decode_breakdown(s, 1, 1000), eager.decode_breakdown(s, 1, 1000)
    assert g.cuda_graph and not e.cuda_graph
    gpu_work = g.total_s - cal.step_overhead_ms * 1e-3     # kernels incl. per-kernel cost
    launches = m.num_layers * 500e-6
    assert launches > gpu_work
    assert e.total_s == pytest.approx(g.total_s + launches - gpu_work, rel=1e-9)
    gp, ep = graph.prefill_breakdown(s, [8000]), eager.prefill_breakdown(s, [8000])
    assert not gp.cuda_graph                              # 8000 tokens > 512: eager anyway
    assert ep.total_s == pytest.approx(gp.total_s, rel=1e-12)


def test_tp_spread_does_not_grow_for_nvlink_decode():
    """Decode of a 70B model is weight-streaming: from TP2 to TP8 the step should shrink
    nearly with the weights per GPU (4x), not stall on collectives. Before issue 15 the ring
    latencies made TP8 barely faster than TP4."""
    pm = PerfModel(load_model("llama-3.1-70b"), CAT)
    t = {tp: pm.decode_step_s(ReplicaShape("H100-SXM", tp), 8, 2000) for tp in (2, 4, 8)}
    assert t[2] / t[4] > 1.6 and t[4] / t[8] > 1.4


def test_estimate_json_names_each_ops_source():
    r = run_main("estimate", "--model", "llama-3.1-8b", "--gpu", "H100-SXM", "--tp", "2",
                 "--input", "1000", "--output", "100", "--json")
    assert r.code == 0, r.describe()
    d = json.loads(r.out)
    for key in ("prefill_op_sources", "decode_op_sources"):
        assert set(d[key]) >= {"gemm", "attention", "allreduce", "overhead"}
        assert all(isinstance(v, str) and v for v in d[key].values())
    assert d["decode_op_sources"]["allreduce"] != SOURCE_RING
    assert d["decode_cuda_graph"] is True


def test_engine_mode_reaches_the_serve_flags():
    plan = load_plan("tests/data/emit_plan.json")
    spec = load_model(plan.model_ref or plan.model)
    pool = plan.pools[0]
    gpu = CAT.gpu(pool.gpu)
    for limits, want, absent in (
            (EngineLimits(), None, ("--enforce-eager", "--max-cudagraph-capture-size")),
            (EngineLimits(enforce_eager=True), "--enforce-eager",
             ("--max-cudagraph-capture-size",)),
            (EngineLimits(cuda_graph_max_tokens=256), "--max-cudagraph-capture-size",
             ("--enforce-eager",))):
        p = plan.model_copy(update={"engine": limits})
        argv = engine_flags(pool, pool_settings(p, pool, spec, gpu, EmitOptions()),
                            EmitOptions())
        if want:
            assert want in argv
        for flag in absent:
            assert flag not in argv
        if limits.cuda_graph_max_tokens:
            assert argv[argv.index("--max-cudagraph-capture-size") + 1] == "256"
