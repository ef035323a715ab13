"""`hetplan calibrate run`: time GEMMs and attention for the model's real shapes with
PyTorch on the local accelerator, then fit efficiencies with the same functions that read
aiconfigurator's tables (so both sources mean the same thing).

Needs PyTorch (not a hetplan dependency). FP8 GEMMs (torch._scaled_mm) run where the GPU has
FP8 in the catalog and torch supports them. A device-to-device copy measures the attainable
memory bandwidth, reported beside the GEMV-fitted memory efficiency (decode's weight reads
are GEMVs, so that is the figure the model uses). All-reduce runs where several GPUs are
visible (allreduce_bench.py); with one, the collective efficiency stays at its default and
the provenance says so.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from datetime import date

from hetplan.catalog import GPU
from hetplan.errors import InputError
from hetplan.model import ModelSpec
from hetplan.perf.aiconfig_import import fit_context_attention, fit_gemm
from hetplan.perf.calibration import DEFAULT, Calibration, Provenance

_TORCH_DTYPE = {"bf16": "bfloat16", "fp16": "float16"}


def gemm_shapes(model: ModelSpec, tp: int, tokens: list[int]) -> list[tuple[int, int, int]]:
    """(m, n, k) of the per-layer projections of one TP rank, for each token count m."""
    h, hd = model.hidden_size, model.head_dim
    qkv = (model.num_attention_heads + 2 * model.num_kv_heads) * hd // tp
    o_in = model.num_attention_heads * hd // tp
    ffn = (model.moe.expert_intermediate_size if model.moe else model.intermediate_size) // tp
    nk = [(qkv, h), (h, o_in), (2 * ffn, h), (h, ffn)]
    return [(m, n, k) for m in tokens for n, k in nk]


def _timer(torch, device: str) -> Callable[[Callable[[], object], int], float]:
    def time_ms(fn, reps: int) -> float:
        fn()  # warm-up
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return (time.perf_counter() - t0) / reps * 1e3
    return time_ms


def run_microbenchmarks(model: ModelSpec, gpu: GPU, tp: int = 1, device: str = "cuda",
                        quick: bool = False, progress: Callable[[str], None] = print):
    """Time the model's GEMMs and causal attention; returns (gemm_df, attention_df) in the
    aiconfigurator column layout (latency in ms)."""
    try:
        import pandas as pd
        import torch
        import torch.nn.functional as F
    except ImportError:
        raise InputError("PyTorch is needed for `hetplan calibrate run` "
                         "(pip install torch)") from None
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("no CUDA device visible; use --device cpu only to smoke-test")
    dt = torch.bfloat16
    time_ms = _timer(torch, device)
    reps = 3 if quick else 20
    tokens = [1, 8, 2048] if quick else [1, 2, 4, 8, 64, 256, 1024, 2048, 4096, 8192]
    rows = []
    shapes = gemm_shapes(model, tp, tokens)
    for i, (m, n, k) in enumerate(shapes):
        a = torch.randn(m, k, device=device, dtype=dt)
        w = torch.randn(n, k, device=device, dtype=dt)
        rows.append({"gemm_dtype": "bfloat16", "m": m, "n": n, "k": k,
                     "latency": time_ms(lambda: F.linear(a, w), reps)})
        progress(f"gemm {i + 1}/{len(shapes)}: m={m} n={n} k={k} {rows[-1]['latency']:.3f} ms")
    if gpu.supports("fp8") and device.startswith("cuda") and hasattr(torch, "float8_e4m3fn"):
        rows += _fp8_gemms(torch, model, tp, device, time_ms, reps, progress)
    gemm_df = pd.DataFrame(rows)

    heads = max(1, model.num_attention_heads // tp)
    kv_heads = max(1, model.num_kv_heads // tp)
    attn_rows = []
    for isl in ([1024] if quick else [1024, 2048, 4096, 8192]):
        batch = max(1, 8192 // isl) if not quick else 4
        q = torch.randn(batch, heads, isl, model.head_dim, device=device, dtype=dt)
        kv = torch.randn(batch, kv_heads, isl, model.head_dim, device=device, dtype=dt)
        rep = heads // kv_heads

        def attn(q=q, kv=kv, rep=rep):
            k = kv.repeat_interleave(rep, dim=1)
            return F.scaled_dot_product_attention(q, k, k, is_causal=True)
        attn_rows.append({"batch_size": batch, "isl": isl, "num_heads": heads,
                          "head_dim": model.head_dim, "kv_cache_dtype": "bfloat16",
                          "window_size": 0, "latency": time_ms(attn, reps)})
        progress(f"attention isl={isl} batch={batch}: {attn_rows[-1]['latency']:.3f} ms")
    return gemm_df, pd.DataFrame(attn_rows)


def _fp8_gemms(torch, model: ModelSpec, tp: int, device: str, time_ms, reps: int,
               progress) -> list[dict]:
    """Large-m FP8 GEMMs (per-tensor scales, bf16 output), the shapes compute efficiency
    is fitted on. Returns [] where this torch build has no FP8 matmul."""
    rows = []
    one = torch.ones((), device=device, dtype=torch.float32)
    for m, n, k in gemm_shapes(model, tp, [2048, 4096, 8192]):
        try:
            a = torch.randn(m, k, device=device).to(torch.float8_e4m3fn)
            b = torch.randn(n, k, device=device).to(torch.float8_e4m3fn).t()  # column-major

            def mm(a=a, b=b):
                return torch._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
            rows.append({"gemm_dtype": "fp8", "m": m, "n": n, "k": k,
                         "latency": time_ms(mm, reps)})
        except (RuntimeError, TypeError) as e:     # no FP8 kernels in this build
            progress(f"fp8 gemm skipped: {e}")
            return []
        progress(f"fp8 gemm m={m} n={n} k={k} {rows[-1]['latency']:.3f} ms")
    return rows


def copy_bandwidth_tbps(device: str = "cuda", gib: float = 2.0, reps: int = 10) -> float:
    """Device-to-device copy bandwidth in TB/s, counting bytes read plus bytes written."""
    import torch
    n = int(gib * 2**30) // 2
    src = torch.empty(n, device=device, dtype=torch.bfloat16)
    dst = torch.empty_like(src)
    ms = _timer(torch, device)(lambda: dst.copy_(src), reps)
    return 2 * n * 2 / (ms * 1e-3) / 1e12


def _device_name(device: str) -> str:
    try:
        import torch
        if device.startswith("cuda"):
            return torch.cuda.get_device_name()
    except (ImportError, RuntimeError):
        pass
    return platform.node()


def calibration_from_microbench(gemm_df, attn_df, gpu: GPU, model: ModelSpec, device: str,
                                torch_version: str = "",
                                copy_tbps: float | None = None) -> Calibration:
    fitted = fit_gemm(gemm_df, gpu)
    by_dtype = {dt: round(fitted[f"compute_{dt}"], 3)
                for dt in ("bf16", "fp8") if fitted.get(f"compute_{dt}")}
    copy_note = (f"; device-to-device copy {copy_tbps:.2f} TB/s "
                 f"({copy_tbps / gpu.mem_bw_tbps:.0%} of {gpu.mem_bw_tbps} TB/s)"
                 if copy_tbps else "")
    attn = fit_context_attention(attn_df, gpu)
    missing = [k for k, v in (("memory", fitted.get("memory")), ("attention", attn)) if not v]
    return Calibration(
        gpu=gpu.name,
        compute_efficiency=round(fitted.get("compute_bf16") or DEFAULT["compute_efficiency"], 3),
        compute_efficiency_by_dtype=by_dtype,
        attention_efficiency=round(attn or DEFAULT["attention_efficiency"], 3),
        memory_efficiency=round(fitted.get("memory") or DEFAULT["memory_efficiency"], 3),
        collective_efficiency=DEFAULT["collective_efficiency"],
        step_overhead_ms=DEFAULT["step_overhead_ms"],
        layer_overhead_us=DEFAULT["layer_overhead_us"],
        provenance=Provenance(
            method="kernel microbenchmarks (hetplan calibrate run)",
            measured_on=f"{_device_name(device)} {device} torch {torch_version}".strip(),
            date=date.today().isoformat(),
            measurements=[f"{len(gemm_df)} GEMMs and {len(attn_df)} attention shapes of "
                          f"{model.name}"],
            notes="collective efficiency and step/layer overheads are hetplan defaults"
                  + (f"; defaults used for: {', '.join(missing)}" if missing else "")
                  + copy_note))
