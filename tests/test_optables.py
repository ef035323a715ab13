"""Per-operation tables: log-space lookups (exact at points, monotone between, clamped
outside), strict loading, the importer recovering efficiencies set by synthetic latencies,
and the shipped tables against physics."""

from __future__ import annotations

import io
import json
import math
import zipfile

import numpy as np
import pandas as pd
import pytest
from cli_harness import run_main

from hetplan.catalog import load_catalog
from hetplan.errors import InputError
from hetplan.perf.calibration import SAME_SILICON, Provenance
from hetplan.perf.optable_import import (derive_allreduce, derive_context_attention,
                                         derive_decode_attention, derive_gemm, derive_moe,
                                         import_optables)
from hetplan.perf.optables import (Curve, Grid, OpTables, TableSource, load_optables,
                                   load_optables_file, optables_dir, save_optables)

CAT = load_catalog()
H100 = CAT.gpu("H100-SXM")
SRC = TableSource(package="aiconfigurator-core", version="0.12.0",
                  file="systems/data/h100_sxm/gemm/vllm/0.24.0/gemm_perf.parquet")


def _grid(values, x=(1.0, 16.0), y=(1e6, 1e8), filled=()):
    return Grid(source=SRC, x_axis="m_tokens", y_axis="weight_elements", x=list(x), y=list(y),
                values=values, filled=list(filled))


def _tables(**kw) -> OpTables:
    ar = Curve(source=SRC, points=[(1024.0, 4.0), (4096.0, 16.0), (16384.0, 64.0)])
    base = dict(gpu="H100-SXM", provenance=Provenance(method="test"), allreduce_us={8: ar},
                gemm_efficiency={"bf16": _grid([[0.1, 0.4], [0.2, 0.8]])})
    return OpTables(**(base | kw))


# ---- lookups ---------------------------------------------------------------------------

def test_allreduce_lookup_exact_between_and_clamped():
    t = _tables()
    hit = t.allreduce_s(4096, 8)
    assert hit.value == pytest.approx(16e-6) and hit.in_range
    assert hit.source == "table:aiconfigurator-core 0.12.0 h100_sxm gemm/vllm/0.24.0"
    mid = t.allreduce_s(2048, 8)               # log-log midpoint of 4 us and 16 us
    assert mid.value == pytest.approx(8e-6) and mid.in_range
    sizes = np.geomspace(1024, 16384, 40)
    lat = [t.allreduce_s(s, 8).value for s in sizes]
    assert all(b > a for a, b in zip(lat, lat[1:]))
    lo, hi = t.allreduce_s(10, 8), t.allreduce_s(1e9, 8)
    assert (lo.value, lo.in_range) == (pytest.approx(4e-6), False)
    assert (hi.value, hi.in_range) == (pytest.approx(64e-6), False)
    assert t.allreduce_s(4096, 4) is None      # no table for TP 4: caller falls back


def test_allreduce_lookup_takes_the_non_decreasing_envelope():
    # a noisy point above a larger message's latency is lowered to it; the others stay
    noisy = Curve(source=SRC, points=[(1024.0, 4.0), (4096.0, 20.0), (16384.0, 10.0),
                                      (65536.0, 40.0)])
    t = _tables(allreduce_us={8: noisy})
    assert t.allreduce_s(4096, 8).value == pytest.approx(10e-6)
    assert t.allreduce_s(1024, 8).value == pytest.approx(4e-6)
    assert t.allreduce_s(65536, 8).value == pytest.approx(40e-6)
    # the shipped tables (B200 TP8 has 25.8 us at 256 KiB against 17.2 us at 1 MiB) never
    # price a larger all-reduce below a smaller one
    sizes = np.geomspace(256, 2**30, 60)
    for gpu, tables in load_optables().items():
        for tp in tables.allreduce_us:
            lat = [tables.allreduce_s(s, tp).value for s in sizes]
            assert all(b >= a * (1 - 1e-12) for a, b in zip(lat, lat[1:])), (gpu, tp)


def test_grid_lookup_exact_bilinear_monotone_clamped():
    t = _tables()
    for (m, nk), v in {(1, 1e6): 0.1, (1, 1e8): 0.4, (16, 1e6): 0.2, (16, 1e8): 0.8}.items():
        hit = t.gemm_efficiency_at("bf16", m, nk)
        assert hit.value == pytest.approx(v) and hit.in_range
    centre = t.gemm_efficiency_at("bf16", 4, 1e7)          # log-centre of the cell
    assert centre.value == pytest.approx((0.1 * 0.4 * 0.2 * 0.8) ** 0.25)
    along = [t.gemm_efficiency_at("bf16", 4, nk).value for nk in np.geomspace(1e6, 1e8, 30)]
    assert all(b > a for a, b in zip(along, along[1:]))
    out = t.gemm_efficiency_at("bf16", 1e5, 1e12)
    assert out.value == pytest.approx(0.8) and not out.in_range
    below = t.gemm_efficiency_at("bf16", 0.5, 1e7)           # clamped on one axis only
    assert below.value == pytest.approx(math.sqrt(0.1 * 0.4)) and not below.in_range
    assert t.gemm_efficiency_at("fp8", 4, 1e7) is None
    assert t.decode_attention_efficiency_at(8, 1024) is None
    assert t.context_attention_efficiency_at(1024) is None
    with pytest.raises(ValueError, match="> 0"):
        t.gemm_efficiency_at("bf16", 0, 1e7)


def test_filled_cells_are_reported_out_of_range():
    t = _tables(gemm_efficiency={"bf16": _grid([[0.1, 0.4], [0.2, 0.4]], filled=[(1, 1)])})
    assert t.gemm_efficiency_at("bf16", 1, 1e6).in_range        # only measured corners
    assert not t.gemm_efficiency_at("bf16", 4, 1e7).in_range    # touches the filled cell


# ---- loading -----------------------------------------------------------------------------

def _write(tmp_path, raw, name="t.yaml"):
    p = tmp_path / name
    p.write_text(json.dumps(raw))
    return p


def test_save_load_round_trip(tmp_path):
    t = _tables()
    save_optables(t, tmp_path / "H100-SXM.yaml")
    assert load_optables_file(tmp_path / "H100-SXM.yaml") == t
    assert load_optables(str(tmp_path)) == {"H100-SXM": t}


@pytest.mark.parametrize("mutate,needle", [
    (lambda r: r.update(colour="red"), "colour"),
    (lambda r: r["allreduce_us"]["8"]["points"][1].__setitem__(1, ".nan"), "allreduce_us"),
    (lambda r: r["gemm_efficiency"]["bf16"]["values"][0].__setitem__(0, float("inf")),
     "gemm_efficiency"),
    (lambda r: r["gemm_efficiency"]["bf16"].update(x=[16.0, 1.0]), "strictly increasing"),
    (lambda r: r["gemm_efficiency"]["bf16"].update(x=[1.0, 1.0]), "strictly increasing"),
    (lambda r: r["allreduce_us"]["8"].update(points=[[1024, 4], [1024, 5]]),
     "strictly increasing"),
    (lambda r: r["gemm_efficiency"]["bf16"].update(values=[[0.1, 0.4]]), "rows"),
    (lambda r: r["gemm_efficiency"]["bf16"]["values"][0].__setitem__(0, 1.5), "(0, 1]"),
    (lambda r: r["gemm_efficiency"]["bf16"].update(x_axis="batch"), "axes"),
    (lambda r: r["gemm_efficiency"]["bf16"].update(filled=[[5, 0]]), "outside"),
    (lambda r: r["gemm_efficiency"]["bf16"]["source"].update(extra=1), "extra"),
    (lambda r: r["gemm_efficiency"].update(bf17=r["gemm_efficiency"]["bf16"]), "bf17"),
])
def test_loader_rejects_bad_files(tmp_path, mutate, needle):
    raw = _tables().model_dump(mode="json")
    mutate(raw)
    text = json.dumps(raw).replace('".nan"', ".nan")          # YAML's NaN literal
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(InputError) as e:
        load_optables_file(p)
    assert needle in str(e.value) and str(p) in str(e.value)


def test_loader_rejects_two_files_for_one_gpu(tmp_path):
    save_optables(_tables(), tmp_path / "a.yaml")
    save_optables(_tables(), tmp_path / "b.yaml")
    with pytest.raises(InputError, match="second op-table file"):
        load_optables(str(tmp_path))


# ---- derivation (synthetic latencies with known efficiencies) -----------------------------

def _gemm_roofline_s(m, n, k, bpe, peak_tflops):
    return max(2 * m * n * k / (peak_tflops * 1e12),
               (bpe * (n * k + m * k) + 2 * m * n) / H100.mem_bw_bytes_per_s)


def _gemm_rows():
    """bf16 shapes in the (m 4096, n*k 2^26) cell at efficiencies 0.5/0.6/0.7 (median 0.6),
    each also measured by a slower kernel; decode-like m=1 shapes at 0.75; fp8 at 0.4."""
    rows = []
    for (m, n, k), eff in {(4096, 8192, 8192): 0.5, (3000, 4096, 16384): 0.6,
                           (6000, 16384, 4096): 0.7, (1, 8192, 8192): 0.75}.items():
        t = _gemm_roofline_s(m, n, k, 2, H100.tflops("bf16"))
        for slow in (1.0, 1.5):
            rows.append(dict(gemm_dtype="bfloat16", m=m, n=n, k=k, latency=t / eff * 1e3 * slow))
        t8 = _gemm_roofline_s(m, n, k, 1, H100.tflops("fp8"))
        rows.append(dict(gemm_dtype="fp8", m=m, n=n, k=k, latency=t8 / 0.4 * 1e3))
    rows.append(dict(gemm_dtype="bfloat16", m=4096, n=64, k=8192, latency=1e-6))  # n < 256
    return pd.DataFrame(rows)


def test_derive_gemm_recovers_the_set_efficiencies():
    grids = derive_gemm(_gemm_rows(), H100, SRC)
    t = _tables(gemm_efficiency=grids)
    assert t.gemm_efficiency_at("bf16", 4096, 2**26).value == pytest.approx(0.6, rel=1e-3)
    assert t.gemm_efficiency_at("bf16", 1, 2**26).value == pytest.approx(0.75, rel=1e-3)
    assert t.gemm_efficiency_at("fp8", 4096, 2**26).value == pytest.approx(0.4, rel=1e-3)
    assert grids["bf16"].x == [1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0]  # trimmed ends
    assert grids["bf16"].y == [2.0 ** 26] and "fastest kernel" in grids["bf16"].source.selection
    assert len(grids["bf16"].filled) == 5          # m 4..1024 copy their nearest measured cell


def test_step_prices_each_matmul_against_the_tables_roofline():
    """A layer's matmuls measured at one efficiency (0.5, against this file's own roofline:
    weights + activations + output bytes) give a table the step must read back as those
    latencies, at decode and prefill token counts: the step prices a matmul against the
    roofline the table was derived with (weights-only bytes under-priced decode GEMMs by
    their activation and output traffic)."""
    from dataclasses import replace

    from hetplan.model import load_model
    from hetplan.perf import PerfModel, ReplicaShape
    from hetplan.perf.roofline import _gemm_time

    model, tp = load_model("llama-3.1-8b"), 2
    h, hd, i = model.hidden_size, model.head_dim, model.intermediate_size
    qkv_n = (model.num_attention_heads + 2 * model.num_kv_heads) * hd
    layer = [(qkv_n // tp, h), (h, model.num_attention_heads * hd // tp),
             (2 * i // tp, h), (h, i // tp)]
    head = (model.vocab_size // tp, h)
    m_points = [1, 4, 16, 64, 256, 1024, 4096]
    rows = [dict(gemm_dtype="bfloat16", m=m, n=n, k=k,
                 latency=_gemm_roofline_s(m, n, k, 2, H100.tflops("bf16")) / 0.5 * 1e3)
            for m in m_points for n, k in layer + [head]]
    t = _tables(gemm_efficiency=derive_gemm(pd.DataFrame(rows), H100, SRC))
    hw = replace(PerfModel(model, CAT).hardware("H100-SXM"), tables=t)
    assert "gemm" in hw.cal.optable_ops
    shape = ReplicaShape(gpu="H100-SXM", tp=tp, weight_dtype="bf16", kv_dtype="bf16")
    lat = {(r["m"], r["n"], r["k"]): r["latency"] * 1e-3 for r in rows}
    for m in (4, 64, 1024):
        seqs = m if m <= 64 else 1               # decode: m sequences; prefill: one prompt
        want = (model.num_layers * sum(lat[(m, n, k)] for n, k in layer)
                + _gemm_roofline_s(seqs, *head, 2, H100.tflops("bf16")) / 0.5)
        got, _, src = _gemm_time(model, hw, shape, float(m), float(seqs), "bf16", 1.0)
        assert got == pytest.approx(want, rel=1e-6), m
        assert src.startswith("table")


def _attn_rows(kind):
    rows = []
    pts = ((1, 512), (16, 512), (16, 2048)) if kind == "decode" else \
        ((1, 1024), (16, 1024), (16, 4096))
    for b, ctx in pts:
        for h, kv in ((32, 8), (8, 1), (32, 32)):        # ratio 4, ratio 8, MHA (ignored)
            for dt, bpe in (("bfloat16", 2), ("fp8", 1)):
                if kind == "decode":
                    model_s = b * ctx * 2 * kv * 128 * bpe / H100.mem_bw_bytes_per_s
                    eff = 0.3 if b == 1 else 0.8
                else:
                    model_s = b * 4 * h * 128 * ctx * (ctx + 1) / 2 / (H100.tflops("bf16") * 1e12)
                    eff = 0.55
                if kv == h:
                    eff = 0.05
                rows.append(dict(batch_size=b, isl=1 if kind == "decode" else ctx,
                                 step=ctx - 1 if kind == "decode" else 0, num_heads=h,
                                 num_key_value_heads=kv, head_dim=128, beam_width=1,
                                 kv_cache_dtype=dt, window_size=0,
                                 latency=model_s / eff * 1e3))
    return pd.DataFrame(rows)


def test_derive_decode_attention_recovers_the_set_efficiencies():
    grids = derive_decode_attention(_attn_rows("decode"), H100, SRC)
    t = _tables(decode_attention_efficiency=grids)
    for kv in ("bf16", "fp8"):
        assert t.decode_attention_efficiency_at(1, 512, kv).value == pytest.approx(0.3, 1e-3)
        assert t.decode_attention_efficiency_at(16, 2048, kv).value == pytest.approx(0.8, 1e-3)
        assert t.decode_attention_efficiency_at(16, 2048, kv).in_range
    assert grids["bf16"].x == [1.0, 4.0, 16.0] and grids["bf16"].y == [512.0, 2048.0]
    assert sorted(grids["bf16"].filled) == [(0, 1), (1, 0), (1, 1)]


def test_derive_context_attention_recovers_the_set_efficiency():
    grid = derive_context_attention(_attn_rows("context"), H100, SRC)
    t = _tables(context_attention_efficiency=grid)
    assert t.context_attention_efficiency_at(1024, batch=1).value == pytest.approx(0.55, 1e-3)
    assert t.context_attention_efficiency_at(4096, batch=16).value == pytest.approx(0.55, 1e-3)
    assert not t.context_attention_efficiency_at(4096, batch=1).in_range    # a filled cell


def test_derive_allreduce_reads_elements_graph_rows_and_nccl():
    rows = [dict(kernel_source=ks, num_gpus=n, message_size=e, latency=lat)
            for n in (2, 8) for e in (1024, 8192)
            for ks, lat in (("vLLM_custom_graph", 0.005 * n), ("vLLM_custom_eager", 0.05))]
    curves = derive_allreduce(pd.DataFrame(rows), SRC)
    assert sorted(curves) == [2, 8]
    assert curves[8].points == [(2048.0, 40.0), (16384.0, 40.0)]    # bytes = 2 x elements
    nccl = [dict(op_name=op, nccl_dtype=dt, num_gpus=4, message_size=4096, latency=lat)
            for op, dt, lat in (("all_reduce", "half", 0.012), ("all_gather", "half", 0.5),
                                ("all_reduce", "int8", 0.5))]
    assert derive_allreduce(pd.DataFrame(nccl), SRC, nccl=True)[4].points == [(8192.0, 12.0)]


def test_derive_moe_recovers_the_set_efficiency_from_touched_expert_bytes():
    """One MoE layer, TP 2, balanced routing: at 4 tokens x top-2 the layer touches 8 of 64
    experts; at 1024 tokens all 64. The test sets each latency to the roofline of those
    experts' weight bytes (or FLOPs when larger) over a chosen efficiency, and the derived
    grid must give that efficiency back."""
    h, f, k, e, tp = 4096, 1024, 2, 64, 2
    slice_el = 3 * h * f / tp
    peak, bw = H100.tflops("bf16") * 1e12, H100.mem_bw_bytes_per_s
    rows = []
    for tokens, eff in ((4, 0.25), (1024, 0.8)):
        touched = min(e, tokens * k)
        roof = max(2 * tokens * k * slice_el / peak, touched * slice_el * 2 / bw)
        for dist, ep, lat in (("balanced", 1, roof / eff * 1e3), ("power_law_1.2", 1, 9.0),
                              ("balanced", 2, 9.0)):
            rows.append(dict(moe_dtype="bfloat16", num_tokens=tokens, hidden_size=h,
                             inter_size=f, topk=k, num_experts=e, moe_tp_size=tp,
                             moe_ep_size=ep, distribution=dist, latency=lat))
    grids = derive_moe(pd.DataFrame(rows), H100, SRC)
    t = _tables(moe_efficiency=grids)
    assert t.moe_efficiency_at("bf16", 4, slice_el).value == pytest.approx(0.25, rel=1e-3)
    assert t.moe_efficiency_at("bf16", 1024, slice_el).value == pytest.approx(0.8, rel=1e-3)
    assert t.moe_efficiency_at("fp8", 4, slice_el) is None


# ---- the importer on a synthetic wheel ---------------------------------------------------

def _parquet(df) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf)
    return buf.getvalue()


def _synthetic_wheel(tmp_path):
    root = "aiconfigurator_core/systems/data/h100_sxm"
    ar = pd.DataFrame([dict(kernel_source="vLLM_custom_graph", num_gpus=8, message_size=e,
                            latency=lat) for e, lat in ((1024, 0.004), (65536, 0.008))])
    old = _gemm_rows().assign(latency=lambda d: d.latency * 10)
    whl = tmp_path / "aiconfigurator_core-0.12.0-cp311-abi3-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr("aiconfigurator_core-0.12.0.dist-info/METADATA", "Name: x\nVersion: 0.12.0\n")
        z.writestr(f"{root}/gemm/vllm/0.24.0/gemm_perf.parquet", _parquet(_gemm_rows()))
        z.writestr(f"{root}/gemm/vllm/0.9.0/gemm_perf.parquet", _parquet(old))
        z.writestr(f"{root}/attention/vllm/0.24.0/generation_attention_perf.parquet",
                   _parquet(_attn_rows("decode")))
        z.writestr(f"{root}/comm/vllm/0.24.0/custom_allreduce_perf.parquet", _parquet(ar))
    return whl


def test_import_synthetic_wheel(tmp_path):
    pytest.importorskip("pyarrow")
    lines: list[str] = []
    (t,) = import_optables(_synthetic_wheel(tmp_path), CAT, progress=lines.append)
    assert t.gpu == "H100-SXM" and lines and lines[0].startswith("h100_sxm -> H100-SXM")
    hit = t.gemm_efficiency_at("bf16", 4096, 2**26)
    assert hit.value == pytest.approx(0.6, rel=1e-3)              # newest version used
    assert hit.source == "table:aiconfigurator-core 0.12.0 h100_sxm gemm/vllm/0.24.0"
    assert t.allreduce_s(2048, 8).value == pytest.approx(4e-6)
    assert t.context_attention_efficiency is None
    assert "systems/data/h100_sxm/gemm/vllm/0.24.0/gemm_perf.parquet" in t.provenance.measurements


def test_cli_import_optables(tmp_path):
    pytest.importorskip("pyarrow")
    r = run_main("calibrate", "import-optables", _synthetic_wheel(tmp_path),
                 "--out", tmp_path / "opt")
    assert r.code == 0, r.err
    assert "h100_sxm -> H100-SXM" in r.err
    t = load_optables_file(tmp_path / "opt" / "H100-SXM.yaml")
    assert t.allreduce_s(131072, 8).value == pytest.approx(8e-6)


def test_cli_import_optables_without_tables_writes_nothing(tmp_path):
    whl = tmp_path / "aiconfigurator_core-0.12.0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr("aiconfigurator_core/__init__.py", "")
    r = run_main("calibrate", "import-optables", whl, "--out", tmp_path / "opt")
    assert r.code == 2
    assert str(whl) in r.err and "no aiconfigurator system" in r.err
    assert not (tmp_path / "opt").exists()


def test_import_wheel_without_tables_is_an_input_error(tmp_path):
    whl = tmp_path / "aiconfigurator_core-0.12.0-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w") as z:
        z.writestr("aiconfigurator_core/__init__.py", "")
    with pytest.raises(InputError, match="no aiconfigurator system"):
        import_optables(whl, CAT)
    with pytest.raises(InputError, match="not found"):
        import_optables(tmp_path / "missing.whl", CAT)


# ---- shipped tables ------------------------------------------------------------------------

def test_shipped_tables_load_name_catalog_gpus_and_agree_with_physics():
    shipped = load_optables()
    assert shipped, "no op-table files shipped"
    for gpu, t in shipped.items():
        assert gpu in CAT.gpus and t.gpu == gpu
        # a file of its own, or the one of the GPU whose silicon it shares (SAME_SILICON)
        assert (optables_dir() / f"{SAME_SILICON.get(gpu, gpu)}.yaml").exists()
        assert t.provenance.measurements
    h100 = shipped["H100-SXM"]
    # vLLM custom all-reduce of a 16 KiB decode message over 8 NVLink GPUs: a few us
    assert 2e-6 < h100.allreduce_s(16384, 8).value < 10e-6
    # message_size read as 16-bit elements: the 1 GiB all-reduce at TP8 then runs at the
    # bus bandwidth NCCL reaches on NVLink (2(n-1)/n of the bytes per GPU at 60-100% of the
    # link); read as bytes it would be half of that
    for name in ("A100-80G-SXM", "H100-SXM", "H200", "B200"):
        bus = 2 * 7 / 8 * 2**30 / shipped[name].allreduce_s(2**30, 8).value
        assert 0.6 < bus / CAT.gpu(name).link_bytes_per_s_per_direction < 1.1, name
    # large bf16 GEMMs reach most of the datasheet peak, never more
    assert 0.6 < h100.gemm_efficiency_at("bf16", 8192, 8192 * 28672).value <= 1.0
    # decode attention at large batch x context streams KV near the HBM bandwidth
    assert 0.7 < h100.decode_attention_efficiency_at(256, 32768, "bf16").value <= 1.0
    assert h100.decode_attention_efficiency_at(1, 128, "bf16").value < 0.1   # launch-bound
