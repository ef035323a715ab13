"""Fit calibration efficiencies to the measured kernel tables that NVIDIA's aiconfigurator
ships (PyPI `aiconfigurator-core`, Apache-2.0: `aiconfigurator_core/systems/data/<system>/`).

The tables are read at calibration time only; hetplan commits just the fitted figures with
their provenance. Each efficiency is fitted as the median ratio between *this model's*
roofline time at 100% efficiency and the measured kernel latency, over the shapes that
exercise it:
- compute_efficiency: GEMMs with m, n, k >= 2048 (compute-bound), per dtype;
- memory_efficiency: GEMMs with m <= 8 and n*k >= 16M (weight streaming, as in decode);
- attention_efficiency: causal context attention, batch*isl >= 4096, bf16 KV;
- collective_efficiency: vLLM custom all-reduce (CUDA-graph mode), 1-64 MiB messages,
  the solve of  t = 2(n-1)/n * bytes / (bw * eff) + 2(n-1) * latency  for eff.
`message_size` in the all-reduce table is read as a count of bf16 elements (assumption).
Step and layer overheads are engine-level and not in kernel tables: they stay at the
defaults unless fitted to end-to-end data (`hetplan calibrate import-bench`).
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import date
from pathlib import Path

import numpy as np

from hetplan.catalog import GPU, Catalog
from hetplan.errors import InputError
from hetplan.perf.calibration import DEFAULT, Calibration, Provenance
from hetplan.perf.links import load_links

SYSTEM_TO_GPU = {"h100_sxm": "H100-SXM", "h200_sxm": "H200", "b200_sxm": "B200",
                 "gb200": "GB200", "a100_sxm": "A100-80G-SXM", "l40s": "L40S",
                 "rtx_pro_6000_server": "RTX-PRO-6000-Blackwell"}
_DTYPE = {"bfloat16": "bf16", "fp8": "fp8"}


class _Tables:
    """Reads parquet tables from an unpacked `.../systems/data` folder or the wheel."""

    def __init__(self, source: Path):
        self.source = source
        try:
            self.zip = zipfile.ZipFile(source) if source.suffix == ".whl" else None
        except (zipfile.BadZipFile, OSError) as e:
            raise InputError(f"not a wheel (zip) file ({e})", file=source) from None
        if self.zip:
            self.names = [n for n in self.zip.namelist() if "/systems/data/" in n]
        else:
            self.names = [str(p.relative_to(source)) for p in source.rglob("*.parquet")]

    def find(self, system: str, kind: str, filename: str) -> str | None:
        """Path of the newest vLLM measurement of `kind` for `system` (None if absent)."""
        pat = re.compile(rf"(^|/){system}/{kind}/vllm/([0-9.]+)/{filename}$")
        hits = [(tuple(int(x) for x in m.group(2).split(".")), n)
                for n in self.names if (m := pat.search(n))]
        return max(hits)[1] if hits else None

    def read(self, name: str):
        import pandas as pd
        try:
            if self.zip:
                return pd.read_parquet(io.BytesIO(self.zip.read(name)))
            return pd.read_parquet(self.source / name)
        except ImportError:
            raise InputError("reading parquet needs pyarrow (pip install 'hetplan[parquet]')",
                             file=self.source) from None


def _median_ratio(model_s: np.ndarray, measured_s: np.ndarray) -> float | None:
    ok = (measured_s > 0) & np.isfinite(model_s)
    if ok.sum() < 3:
        return None
    return float(np.clip(np.median(model_s[ok] / measured_s[ok]), 0.02, 1.0))


def fit_gemm(df, gpu: GPU) -> dict[str, float]:
    out: dict[str, float] = {}
    lat_s = df["latency"].to_numpy(float) * 1e-3
    m, n, k = (df[c].to_numpy(float) for c in ("m", "n", "k"))
    for raw, dt in _DTYPE.items():
        if not gpu.supports(dt):
            continue
        sel = (df["gemm_dtype"] == raw).to_numpy() & (m >= 2048) & (n >= 2048) & (k >= 2048)
        flops_s = 2 * m * n * k / (gpu.tflops(dt) * 1e12)
        eff = _median_ratio(flops_s[sel], lat_s[sel])
        if eff:
            out[f"compute_{dt}"] = eff
    sel = (df["gemm_dtype"] == "bfloat16").to_numpy() & (m <= 8) & (n * k >= 16e6)
    bytes_s = (2 * n * k + 2 * m * (n + k)) / gpu.mem_bw_bytes_per_s
    eff = _median_ratio(bytes_s[sel], lat_s[sel])
    if eff:
        out["memory"] = eff
    return out


def fit_context_attention(df, gpu: GPU) -> float | None:
    window = df["window_size"] if "window_size" in df else 0      # older tables: no windows
    sel = ((df["kv_cache_dtype"] == "bfloat16") & (window == 0)
           & (df["batch_size"] * df["isl"] >= 4096)).to_numpy()
    b, s, h, d = (df[c].to_numpy(float) for c in ("batch_size", "isl", "num_heads", "head_dim"))
    flops = b * 4 * h * d * s * (s + 1) / 2.0          # causal QK^T + AV
    return _median_ratio((flops / (gpu.tflops("bf16") * 1e12))[sel],
                         df["latency"].to_numpy(float)[sel] * 1e-3)


def fit_allreduce(df, gpu: GPU) -> dict[int, float]:
    """Collective efficiency per TP size (PCIe switch topologies make 4 and 8 GPUs much
    slower per byte than 2), plus the median over all sizes under key 0."""
    link = load_links().intra_node(gpu)
    sel = (df["kernel_source"].astype(str).str.contains("graph")
           & (df["message_size"] * 2 >= 2**20) & (df["message_size"] * 2 <= 2**26)).to_numpy()
    n = df["num_gpus"].to_numpy(float)
    nbytes = df["message_size"].to_numpy(float) * 2.0
    t = df["latency"].to_numpy(float) * 1e-3 - 2 * (n - 1) * link.latency_us * 1e-6
    ring_s = 2 * (n - 1) / n * nbytes / (link.bandwidth_gbit_per_s * 1e9 / 8)
    out = {}
    for size in sorted(set(n[sel].astype(int))):
        eff = _median_ratio(ring_s[sel & (n == size)], t[sel & (n == size)])
        if eff:
            out[int(size)] = round(eff, 3)
    overall = _median_ratio(ring_s[sel], t[sel])
    if overall:
        out[0] = round(overall, 3)
    return out


def import_aiconfigurator(source: str | Path, catalog: Catalog,
                          systems: list[str] | None = None) -> list[Calibration]:
    """Fit one Calibration per system found in `source` (wheel or unpacked data folder)."""
    source = Path(source)
    if not source.exists():
        raise InputError("not found (give the aiconfigurator-core wheel or its "
                         "systems/data folder)", file=source)
    tables = _Tables(source)
    cals = []
    for system, gpu_name in SYSTEM_TO_GPU.items():
        if systems and system not in systems and gpu_name not in systems:
            continue
        gemm_path = tables.find(system, "gemm", "gemm_perf.parquet")
        if gemm_path is None or gpu_name not in catalog.gpus:
            continue
        gpu = catalog.gpu(gpu_name)
        try:
            cals.append(_fit_system(tables, system, gpu, gemm_path))
        except KeyError as e:
            raise InputError(f"unexpected table layout for {system}: no column {e}",
                             file=source) from None
    if not cals:
        raise InputError("no aiconfigurator system with vLLM GEMM tables found", file=source)
    return cals


def _fit_system(tables: _Tables, system: str, gpu: GPU, gemm_path: str) -> Calibration:
    used = [gemm_path]
    fitted = fit_gemm(tables.read(gemm_path), gpu)
    attn_path = tables.find(system, "attention", "context_attention_perf.parquet")
    if attn_path:
        used.append(attn_path)
        fitted["attention"] = fit_context_attention(tables.read(attn_path), gpu)
    by_tp: dict[int, float] = {}
    ar_path = tables.find(system, "comm", "custom_allreduce_perf.parquet")
    if ar_path:
        used.append(ar_path)
        by_tp = fit_allreduce(tables.read(ar_path), gpu)
        fitted["collective"] = by_tp.pop(0, None)
    by_dtype = {k.split("_", 1)[1]: round(v, 3) for k, v in fitted.items()
                if k.startswith("compute_") and v}
    base = by_dtype.get("bf16", DEFAULT["compute_efficiency"])
    missing = [k for k in ("memory", "attention", "collective") if not fitted.get(k)]
    return Calibration(
        gpu=gpu.name,
        compute_efficiency=base,
        compute_efficiency_by_dtype=by_dtype,
        attention_efficiency=round(fitted.get("attention") or DEFAULT["attention_efficiency"], 3),
        memory_efficiency=round(fitted.get("memory") or DEFAULT["memory_efficiency"], 3),
        collective_efficiency=round(fitted.get("collective")
                                    or DEFAULT["collective_efficiency"], 3),
        collective_efficiency_by_tp=by_tp,
        step_overhead_ms=DEFAULT["step_overhead_ms"],
        layer_overhead_us=DEFAULT["layer_overhead_us"],
        provenance=Provenance(
            method="kernel microbenchmarks (aiconfigurator-core measured tables)",
            measured_on=f"aiconfigurator system '{system}' (vLLM kernels)",
            date=date.today().isoformat(),
            measurements=[_short(p) for p in used],
            notes=("efficiency = median(roofline time at 100% / measured latency); "
                   "step/layer overheads are hetplan defaults"
                   + (f"; defaults used for: {', '.join(missing)}" if missing else "")),
        ))


def _short(path: str) -> str:
    return path[path.index("systems/data/"):] if "systems/data/" in path else path
