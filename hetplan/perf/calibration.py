"""Per-GPU efficiencies of the measured-roofline model, with their provenance.

A calibration file (`catalogs/calibration/<GPU>.yaml`) holds the fractions of datasheet peak
that real kernels reach on that GPU, fitted to measurements (`hetplan calibrate`), and says
which measurements, when and where. GPUs without a file use DEFAULT below, and every
estimate for them says so (`Calibration.is_default`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hetplan.errors import InputError, from_validation_error
from hetplan.io import catalogs_dir, dumps_json, load_yaml, write_atomic


class Provenance(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str                     # e.g. "microbenchmarks", "fit to published table"
    measured_on: str = ""           # host / cloud / paper
    date: str = ""                  # ISO date of the measurement or fit
    measurements: list[str] = []    # ids or files of the measurements used
    fit_error_pct: float | None = None   # median abs % error of the fit on its own data
    notes: str = ""


class Calibration(BaseModel):
    """Fractions of peak reached in practice, and fixed per-step costs.

    compute_efficiency: large dense GEMMs (prefill projections/MLP), of dense peak TFLOPS
        (bf16; `compute_efficiency_by_dtype` may refine it for fp8/fp4).
    attention_efficiency: prefill attention (FlashAttention-style), of bf16 peak.
    memory_efficiency: streaming weights / KV cache, of datasheet bandwidth.
    collective_efficiency: all-reduce bus bandwidth, of the intra-node link's unidirectional
        bandwidth.
    step_overhead_ms: fixed cost per engine step outside the GPU's kernels (scheduling,
        input preparation, sampling, the graph launch).
    layer_overhead_us: CPU time to launch one layer's kernels in an eager step (no CUDA
        graph); it shows only where it exceeds the GPU's work (`roofline.step_time`).
    kernel_overhead_us: the GPU's fixed cost per kernel (inter-kernel gap, ramp and tail),
        charged per kernel in every step (`roofline.kernels_per_layer`).
    optable_ops: the ops whose per-op measured table (catalogs/calibration/optables) this GPU
        uses where one exists; an op left out uses roofline x the efficiencies above, where
        end-to-end rows showed the table describes the engine worse (say why in the notes).
    prefill_compute_scale: share of the isolated kernels' compute efficiency that a whole
        prefill pass keeps for its 16-bit matmuls (unfused work around them, kernel tails);
        1 = none lost; quantized matmuls and attention do not take it
        (`roofline.prefill_gemm_scale`). Fitted with the overheads to end-to-end prefill
        measurements, never to kernels; decode steps are memory-bound and do not use it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    gpu: str
    compute_efficiency: float = Field(gt=0.0, le=1.0)
    compute_efficiency_by_dtype: dict[str, float] = {}   # overrides for fp8, fp4, ...
    attention_efficiency: float = Field(gt=0.0, le=1.0)
    memory_efficiency: float = Field(gt=0.0, le=1.0)
    collective_efficiency: float = Field(gt=0.0, le=1.0)
    collective_efficiency_by_tp: dict[int, float] = {}   # PCIe topologies vary with TP size
    step_overhead_ms: float = Field(ge=0.0)
    layer_overhead_us: float = Field(ge=0.0)
    kernel_overhead_us: float = Field(default=0.0, ge=0.0)
    prefill_compute_scale: float = Field(default=1.0, gt=0.0, le=1.0)
    optable_ops: tuple[Literal["gemm", "allreduce", "moe"], ...] = ("gemm", "allreduce", "moe")
    provenance: Provenance

    def collective_efficiency_for(self, tp: int) -> float:
        return self.collective_efficiency_by_tp.get(tp, self.collective_efficiency)

    def compute_efficiency_for(self, dtype: str) -> float:
        return self.compute_efficiency_by_dtype.get(dtype, self.compute_efficiency)

    @property
    def is_default(self) -> bool:
        return self.provenance.method == "default"


# Documented fallback for GPUs never measured: mid-range figures typical of vLLM on
# datacenter GPUs (GEMM ~70% of peak, FlashAttention ~50%, HBM streaming ~80%, NCCL ~75%).
# They are assumptions, not measurements; output built on them says so.
MODERN_ENGINE_OVERHEADS = dict(step_overhead_ms=0.75, kernel_overhead_us=0.75)
"""Per-step and per-kernel overheads of a 2025+ engine for GPUs with no end-to-end rows of
their own: the medians of the fits to tests/data/modern_perf.csv on A100-80G-SXM, B200,
H100-SXM and H200 (`hetplan calibrate fit-overhead`, 2026-11-30)."""
EAGER_LAYER_DISPATCH_US = 800.0
"""CPU time per layer of a step that runs without a CUDA graph (vLLM above its capture size,
`--enforce-eager`, or FULL_DECODE_ONLY prompt steps): the Python and launch work of one
layer's kernels. aiconfigurator's vLLM backend charges 0.8 ms per layer to every prefill, "not
captured in silicon benchmarks ... calibrated at ~0.8ms/layer against the full silicon corpus
across hardware platforms and model families" (github.com/ai-dynamo/aiconfigurator @ 095f58a,
aic-core/src/aiconfigurator_core/sdk/backends/vllm_backend.py, `_prefill_dispatch_overhead_ms`).
There it is added to TTFT; hetplan overlaps it with the GPU's work, since kernels launch
asynchronously (`roofline.step_time`: an eager step costs the larger of the two), so it shows
only where the GPU's share of a layer is shorter. The modern rows that ran their prompt steps
eager back out 0.57-0.97 ms per layer where the GPU's work is shorter (H100 and H200 TP8,
B200 TP2 and TP8; tests/data/modern_perf.md, "Third pass"). The former 10 us placeholder is
less than one kernel launch from Python."""
DEFAULT = dict(compute_efficiency=0.70, attention_efficiency=0.50, memory_efficiency=0.80,
               collective_efficiency=0.75, layer_overhead_us=EAGER_LAYER_DISPATCH_US,
               **MODERN_ENGINE_OVERHEADS)


def default_calibration(gpu: str) -> Calibration:
    return Calibration(gpu=gpu, **DEFAULT, provenance=Provenance(
        method="default", notes="no measurement for this GPU: hetplan's documented defaults"))


def calibration_dir() -> Path:
    return catalogs_dir() / "calibration"


def load_calibration_file(path: str | Path) -> Calibration:
    path = Path(path)
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise InputError("expected a mapping of calibration fields", file=path)
    try:
        return Calibration(**raw)
    except ValidationError as e:
        raise from_validation_error(e, file=path) from None


SAME_SILICON = {"A100-40G-SXM": "A100-80G-SXM"}
"""GPUs with no measurements of their own that use the kernel measurements of a catalog GPU
with the same compute silicon, where only the memory differs. The efficiencies are fractions
of each GPU's own datasheet peaks, so they carry over. A100-40G-SXM and A100-80G-SXM are both
a GA100 SXM4 with 108 SMs at 1410 MHz, 400 W and NVLink3. The 40 GB part has HBM2 at
1.555 TB/s; the 80 GB part has HBM2e at 2.039 TB/s. With hetplan's default efficiencies
instead, the 40 GB part's compute-bound prefills were priced faster than the same prompts on
the 80 GB part (Llama-3-8B, 280 tokens: 20.8 against 23.0 ms), on the same silicon and with
less bandwidth."""


def with_same_silicon(found: dict, copy) -> dict:
    """`found` (by GPU) plus, for each SAME_SILICON GPU without an entry of its own, its
    source GPU's entry passed through copy(entry, gpu, source_gpu)."""
    out = dict(found)
    for gpu, src in SAME_SILICON.items():
        if gpu not in out and src in out:
            out[gpu] = copy(out[src], gpu, src)
    return out


def _borrowed(cal: Calibration, gpu: str, src: str) -> Calibration:
    prov = cal.provenance.model_copy(update={
        "measured_on": f"{src} (same compute silicon: calibration.SAME_SILICON)",
        "notes": f"{src}'s measured calibration, used for {gpu}: " + cal.provenance.notes})
    return cal.model_copy(update={"gpu": gpu, "provenance": prov})


@lru_cache(maxsize=4)
def load_calibrations(directory: str | None = None) -> dict[str, Calibration]:
    """All calibration files in `directory` (default: catalogs/calibration), by GPU name, and
    the SAME_SILICON GPUs that share one of them."""
    d = Path(directory) if directory else calibration_dir()
    out: dict[str, Calibration] = {}
    for p in sorted(d.glob("*.yaml")):
        c = load_calibration_file(p)
        out[c.gpu] = c
    return with_same_silicon(out, _borrowed)


def save_calibration(cal: Calibration, path: str | Path) -> None:
    """Write a calibration as YAML (JSON is valid YAML; keys sorted for stable diffs)."""
    write_atomic(path, "# hetplan calibration (measured-roofline efficiencies); "
                 "see hetplan/perf/calibration.py\n" + dumps_json(cal.model_dump()))
