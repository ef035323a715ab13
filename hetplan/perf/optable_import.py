"""Derive per-operation tables (optables.py) from aiconfigurator-core's measured kernel tables.

The wheel's parquet files are read at calibration time only (through aiconfig_import's
reader, newest vLLM version of each table); hetplan commits the derived tables on its own
grids, with the file each came from. Latencies in the source tables are milliseconds.

- All-reduce: vLLM custom all-reduce in CUDA-graph mode, or NCCL's all-reduce (16-bit)
  where a system has no custom table. `message_size` counts 16-bit *elements*, not bytes:
  the NCCL and custom tables agree at large sizes, and reading them as elements gives the
  bus bandwidths NCCL is known to reach at 0.5-1 GiB (8x A100 ~220 GB/s, 8x H100
  ~445 GB/s), where bytes would give half. Stored as (message_bytes = 2 x elements, latency_us).
- GEMM efficiency: roofline at 100% of the catalog's datasheet peak,
  max(2mnk / peak(dtype), (bpe(dtype)(nk + mk) + 2mn) / mem_bw), over the measured time of
  the fastest kernel per shape; n, k >= MIN_GEMM_DIM; median per grid cell.
- Decode attention efficiency: K and V bytes read, batch x context x 2 x kv_heads x
  head_dim x bpe(kv), / mem_bw, over the measured time; context = isl + step; rows with
  head_dim 128, no sliding window and the GQA ratios of Llama 3 (heads/kv_heads 4 or 8, every
  head count measured, i.e. TP shards too), fastest kernel per row, median per cell.
- Context attention efficiency: causal FLOPs 4 b h d s(s+1)/2 at bf16 peak over the measured
  time, same head selection, bf16 KV.
Efficiencies above 1 are capped at 1: operands small enough to stay in L2 across the
benchmark's repeats (L40S, RTX PRO 6000: 96-128 MB of L2) beat the HBM roofline.
- MoE efficiency: one MoE layer with TP-sliced experts (moe_ep_size 1, balanced routing),
  vLLM's table: the routed experts' roofline (FLOPs at the dtype's peak, or the weight bytes
  of the min(E, tokens x top-k) experts touched, per GPU) over the measured time, by
  (tokens, 3 x hidden x expert FFN / TP), capped at 1 like the rest. fp8 is vLLM's
  block-scaled FP8 MoE (how DeepSeek/Qwen FP8 checkpoints are served). Small token counts
  reach a small share of bandwidth (H200 FP8, 5.5M-element slices: ~0.15 at 1 token, ~0.5 at
  16): that, not the bytes, sets small-batch MoE decode. The all-to-all of EP is not
  derived (moe.py models it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np

from hetplan.catalog import GPU, Catalog
from hetplan.dtypes import bytes_per_element
from hetplan.errors import InputError
from hetplan.perf.aiconfig_import import SYSTEM_TO_GPU, _short, _Tables
from hetplan.perf.calibration import Provenance
from hetplan.perf.optables import (CONTEXT_AXES, DECODE_AXES, GEMM_AXES, MOE_AXES, Curve, Grid,
                                   OpTables, TableSource)
from hetplan.perf.roofline import gemm_roofline_s

PACKAGE = "aiconfigurator-core"
GEMM_DTYPES = {"bfloat16": "bf16", "fp8": "fp8", "nvfp4": "fp4"}   # table name -> hetplan
KV_DTYPES = {"bfloat16": "bf16", "fp8": "fp8"}
MIN_GEMM_DIM = 256
GEMM_M = [4.0 ** i for i in range(8)]                  # 1 .. 16384 tokens, x4 steps
GEMM_NK = [2.0 ** e for e in range(20, 31, 2)]         # 1M .. 1G weight elements, x4 steps
DECODE_BATCH = [4.0 ** i for i in range(6)]            # 1 .. 1024
DECODE_CONTEXT = [128.0 * 4 ** i for i in range(6)]    # 128 .. 131072 tokens
CONTEXT_BATCH = [4.0 ** i for i in range(5)]           # 1 .. 256
CONTEXT_PROMPT = [64.0 * 2 ** i for i in range(9)]     # 64 .. 16384 tokens
MOE_DTYPES = {"bfloat16": "bf16", "fp8_block": "fp8", "fp8": "fp8", "nvfp4": "fp4"}
MOE_TOKENS = [4.0 ** i for i in range(8)]               # 1 .. 16384 tokens per step
MOE_SLICE = [2.0 ** e for e in range(18, 29, 2)]        # 256K .. 256M elements per GPU
GQA_RATIOS = (4, 8)
HEAD_DIM = 128


def _eff(model_s: np.ndarray, measured_ms: np.ndarray) -> np.ndarray:
    return np.minimum(model_s / (measured_ms * 1e-3), 1.0)


def grid_of(x: np.ndarray, y: np.ndarray, eff: np.ndarray, gx: list[float], gy: list[float],
            half_x: float, half_y: float) -> tuple[list[float], list[float], list[list[float]],
                                                   list[tuple[int, int]]] | None:
    """Median of `eff` per cell: rows with |log2(x / gx[i])| < half_x (same for y; 0 = exact).
    Axis ends without any measurement are trimmed; inner empty cells copy the nearest
    measured cell in log-grid distance and are listed as filled. None if nothing is measured."""
    ok = np.isfinite(eff) & (eff > 0)
    lx, ly = np.log2(x[ok]), np.log2(y[ok])
    e = eff[ok]
    cells = np.full((len(gx), len(gy)), np.nan)
    for i, cx in enumerate(gx):
        in_x = _near(lx, np.log2(cx), half_x)
        for j, cy in enumerate(gy):
            sel = in_x & _near(ly, np.log2(cy), half_y)
            if sel.any():
                cells[i, j] = float(np.median(e[sel]))
    rows = np.flatnonzero(~np.isnan(cells).all(axis=1))
    cols = np.flatnonzero(~np.isnan(cells).all(axis=0))
    if not len(rows):
        return None
    cells = cells[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    measured = np.argwhere(~np.isnan(cells))
    filled = []
    for i, j in np.argwhere(np.isnan(cells)):
        d = np.hypot(measured[:, 0] - i, measured[:, 1] - j)
        a, b = measured[int(np.argmin(d))]
        cells[i, j] = cells[a, b]
        filled.append((int(i), int(j)))
    return ([gx[i] for i in range(rows[0], rows[-1] + 1)],
            [gy[j] for j in range(cols[0], cols[-1] + 1)],
            [[float(f"{v:.4g}") for v in r] for r in cells], filled)


def _near(logs: np.ndarray, centre: float, half: float) -> np.ndarray:
    if half == 0:
        return np.isclose(logs, centre)
    return (logs >= centre - half) & (logs < centre + half)


def _grid(axes: tuple[str, str], src: TableSource, found) -> Grid | None:
    if found is None:
        return None
    gx, gy, values, filled = found
    return Grid(source=src, x_axis=axes[0], y_axis=axes[1], x=gx, y=gy, values=values,
                filled=filled)


def derive_allreduce(df, src: TableSource, nccl: bool = False) -> dict[int, Curve]:
    """Latency (us) by message bytes per TP size; CUDA-graph rows when the table has them."""
    if nccl:
        sel = ((df["op_name"] == "all_reduce") & (df["nccl_dtype"] == "half")).to_numpy()
    else:
        ks = df["kernel_source"].astype(str)
        graph = ks.str.contains("graph").to_numpy()
        sel = graph if graph.any() else np.ones(len(df), bool)
    d = df[sel]
    out = {}
    for tp, g in d.groupby("num_gpus"):
        med = g.groupby("message_size")["latency"].median()
        pts = [(float(m) * 2.0, round(float(ms) * 1e3, 3)) for m, ms in med.items() if ms > 0]
        if int(tp) >= 2 and pts:
            out[int(tp)] = Curve(source=src, points=pts)
    return out


def derive_gemm(df, gpu: GPU, src: TableSource) -> dict[str, Grid]:
    out = {}
    for raw, dt in GEMM_DTYPES.items():
        d = df[(df["gemm_dtype"] == raw).to_numpy()]
        if d.empty or not gpu.supports(dt):
            continue
        d = d[(d["n"] >= MIN_GEMM_DIM) & (d["k"] >= MIN_GEMM_DIM)]
        d = d.groupby(["m", "n", "k"], as_index=False)["latency"].min()   # fastest kernel
        m, n, k = (d[c].to_numpy(float) for c in ("m", "n", "k"))
        eff = _eff(gemm_roofline_s(gpu, dt, m, n, k), d["latency"].to_numpy(float))
        grid = _grid(GEMM_AXES, _with(src, f"gemm_dtype={raw}; n,k>={MIN_GEMM_DIM}; fastest "
                                      "kernel per shape; median per cell (x4 bins)"),
                     grid_of(m, n * k, eff, GEMM_M, GEMM_NK, 1.0, 1.0))
        if grid:
            out[dt] = grid
    return out


def derive_moe(df, gpu: GPU, src: TableSource) -> dict[str, Grid]:
    """MoE layers with TP-sliced experts (moe_ep_size 1), balanced routing: efficiency =
    max(routed FLOPs / peak, bytes of the experts touched / bandwidth) / measured latency,
    per GPU. 'Balanced' spreads tokens x top-k over min(E, tokens x top-k) experts, which is
    the count used here (random routing touches a few % fewer at small token counts). fp8
    rows are the block-scaled FP8 kernels DeepSeek/Qwen FP8 checkpoints use."""
    out = {}
    base = df[(df["distribution"] == "balanced") & (df["moe_ep_size"] == 1)]
    for raw, dt in MOE_DTYPES.items():
        d = base[(base["moe_dtype"] == raw).to_numpy()]
        if d.empty or not gpu.supports(dt) or dt in out:
            continue
        keys = ["num_tokens", "hidden_size", "inter_size", "topk", "num_experts", "moe_tp_size"]
        d = d.groupby(keys, as_index=False)["latency"].min()            # fastest kernel
        t, h, f, k, e, tp = (d[c].to_numpy(float) for c in keys)
        slice_el = 3.0 * h * f / tp
        touched = np.minimum(e, t * k)
        flops_s = 2.0 * t * k * slice_el / (gpu.tflops(dt) * 1e12)
        bytes_s = touched * slice_el * bytes_per_element(dt) / gpu.mem_bw_bytes_per_s
        eff = _eff(np.maximum(flops_s, bytes_s), d["latency"].to_numpy(float))
        grid = _grid(MOE_AXES, _with(src, f"moe_dtype={raw}; balanced routing; moe_ep_size 1; "
                                     "fastest kernel per shape; median per cell (x4 bins)"),
                     grid_of(t, slice_el, eff, MOE_TOKENS, MOE_SLICE, 1.0, 1.0))
        if grid:
            out[dt] = grid
    return out


def _llama_rows(df):
    """head_dim 128, no sliding window, heads/kv_heads in GQA_RATIOS, one beam."""
    window = df["window_size"] if "window_size" in df else 0     # older tables: no windows
    beam = df["beam_width"] if "beam_width" in df else 1
    h, kv = df["num_heads"], df["num_key_value_heads"]
    sel = ((df["head_dim"] == HEAD_DIM) & (window == 0) & (beam == 1) & (h % kv == 0)
           & (h // kv).isin(GQA_RATIOS))
    return df[sel.to_numpy()]


def derive_decode_attention(df, gpu: GPU, src: TableSource) -> dict[str, Grid]:
    out = {}
    d = _llama_rows(df).assign(context=lambda t: t["isl"] + t["step"])
    keys = ["batch_size", "context", "num_heads", "num_key_value_heads", "kv_cache_dtype"]
    d = d.groupby(keys, as_index=False)["latency"].min()                   # fastest kernel
    for raw, dt in KV_DTYPES.items():
        r = d[(d["kv_cache_dtype"] == raw).to_numpy()]
        if r.empty:
            continue
        b, c, kv = (r[x].to_numpy(float) for x in ("batch_size", "context", "num_key_value_heads"))
        kv_s = b * c * 2 * kv * HEAD_DIM * bytes_per_element(dt) / gpu.mem_bw_bytes_per_s
        eff = _eff(kv_s, r["latency"].to_numpy(float))
        grid = _grid(DECODE_AXES, _with(src, f"kv_cache_dtype={raw}; {_HEADS}"),
                     grid_of(b, c, eff, DECODE_BATCH, DECODE_CONTEXT, 0.0, 0.0))
        if grid:
            out[dt] = grid
    return out


def derive_context_attention(df, gpu: GPU, src: TableSource) -> Grid | None:
    d = _llama_rows(df)
    d = d[(d["kv_cache_dtype"] == "bfloat16").to_numpy()]
    d = d.groupby(["batch_size", "isl", "num_heads", "num_key_value_heads"],
                  as_index=False)["latency"].min()
    b, s, h = (d[x].to_numpy(float) for x in ("batch_size", "isl", "num_heads"))
    flops = b * 4 * h * HEAD_DIM * s * (s + 1) / 2.0
    eff = _eff(flops / (gpu.tflops("bf16") * 1e12), d["latency"].to_numpy(float))
    return _grid(CONTEXT_AXES, _with(src, f"kv_cache_dtype=bfloat16; {_HEADS}"),
                 grid_of(b, s, eff, CONTEXT_BATCH, CONTEXT_PROMPT, 0.0, 0.0))


_HEADS = (f"head_dim {HEAD_DIM}, no window, heads/kv_heads in {list(GQA_RATIOS)} (all head "
          "counts); fastest kernel per row; median per cell")


def _with(src: TableSource, selection: str) -> TableSource:
    return src.model_copy(update={"selection": selection})


def _wheel_version(tables: _Tables) -> str:
    if tables.zip:
        for n in tables.zip.namelist():
            if n.endswith(".dist-info/METADATA"):
                text = tables.zip.read(n).decode("utf-8", "replace")
                m = re.search(r"^Version:\s*(\S+)", text, re.M)
                if m:
                    return m.group(1)
    m = re.search(r"aiconfigurator_core-([0-9][^-/]*)", str(tables.source))
    return m.group(1) if m else "unknown"


def _find_nccl(tables: _Tables, system: str) -> str | None:
    pat = re.compile(rf"(^|/){system}/comm/nccl/([0-9.]+)/nccl_perf.parquet$")
    hits = [(tuple(int(x) for x in m.group(2).split(".") if x), n)
            for n in tables.names if (m := pat.search(n))]
    return max(hits)[1] if hits else None


def import_optables(source: str | Path, catalog: Catalog, systems: list[str] | None = None,
                    progress: Callable[[str], None] | None = None) -> list[OpTables]:
    """One OpTables per system of SYSTEM_TO_GPU found in `source` (wheel or data folder)."""
    source = Path(source)
    if not source.exists():
        raise InputError("not found (give the aiconfigurator-core wheel or its "
                         "systems/data folder)", file=source)
    tables = _Tables(source)
    version = _wheel_version(tables)
    out = []
    for system, gpu_name in SYSTEM_TO_GPU.items():
        if systems and system not in systems and gpu_name not in systems:
            continue
        if gpu_name not in catalog.gpus:
            continue
        try:
            t = _derive_system(tables, version, system, catalog.gpu(gpu_name))
        except KeyError as e:
            raise InputError(f"unexpected table layout for {system}: no column {e}",
                             file=source) from None
        if t is None:
            continue
        out.append(t)
        if progress:
            progress(f"{system} -> {gpu_name}: {_summary(t)}")
    if not out:
        raise InputError("no aiconfigurator system with vLLM GEMM, attention or all-reduce "
                         "tables found", file=source)
    return out


def _derive_system(tables: _Tables, version: str, system: str, gpu: GPU) -> OpTables | None:
    used: list[str] = []

    def src_for(kind: str, filename: str, finder=None) -> tuple[object, TableSource] | None:
        path = finder(tables, system) if finder else tables.find(system, kind, filename)
        if path is None:
            return None
        used.append(_short(path))
        return tables.read(path), TableSource(package=PACKAGE, version=version,
                                              file=_short(path))

    fields: dict = {}
    if hit := src_for("comm", "custom_allreduce_perf.parquet"):
        fields["allreduce_us"] = derive_allreduce(*hit)
    elif hit := src_for("comm", "", _find_nccl):
        fields["allreduce_us"] = derive_allreduce(*hit, nccl=True)
    if hit := src_for("gemm", "gemm_perf.parquet"):
        fields["gemm_efficiency"] = derive_gemm(hit[0], gpu, hit[1])
    if hit := src_for("attention", "generation_attention_perf.parquet"):
        fields["decode_attention_efficiency"] = derive_decode_attention(hit[0], gpu, hit[1])
    if hit := src_for("attention", "context_attention_perf.parquet"):
        fields["context_attention_efficiency"] = derive_context_attention(hit[0], gpu, hit[1])
    if hit := src_for("moe", "moe_perf.parquet"):
        fields["moe_efficiency"] = derive_moe(hit[0], gpu, hit[1])
    if not any(fields.values()):
        return None
    return OpTables(gpu=gpu.name, **fields, provenance=Provenance(
        method=f"per-op tables derived from {PACKAGE} {version} measured kernels",
        measured_on=f"aiconfigurator system '{system}' (vLLM kernels)",
        date=date.today().isoformat(), measurements=used, notes=NOTES))


NOTES = ("all-reduce message_size read as 16-bit elements (bytes = 2x); efficiencies = "
         "roofline at 100% of catalog datasheet peak / measured latency, capped at 1; grids "
         "are medians per cell (attention rows: head_dim 128, heads/kv_heads 4 or 8); empty "
         "inner cells copy the nearest measured cell (listed in 'filled'); lookups clamp "
         "outside the grid; MoE grids: TP-sliced experts, balanced routing (derive_moe)")


def _summary(t: OpTables) -> str:
    parts = []
    if t.allreduce_us:
        parts.append(f"all-reduce TP {sorted(t.allreduce_us)}")
    if t.gemm_efficiency:
        parts.append(f"GEMM {sorted(t.gemm_efficiency)}")
    if t.decode_attention_efficiency:
        parts.append(f"decode attention {sorted(t.decode_attention_efficiency)}")
    if t.context_attention_efficiency:
        parts.append("context attention")
    if t.moe_efficiency:
        parts.append(f"MoE {sorted(t.moe_efficiency)}")
    return ", ".join(parts)
