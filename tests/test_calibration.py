"""Calibration: fitting routines recover known efficiencies from synthetic measurements;
files round-trip; measurement tables and bench results load with clear errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hetplan.catalog import load_catalog
from hetplan.errors import InputError
from hetplan.perf import default_calibration
from hetplan.perf.aiconfig_import import fit_allreduce, fit_context_attention, fit_gemm
from hetplan.perf.bench_import import measurements_from_bench
from hetplan.perf.calibration import load_calibration_file, save_calibration
from hetplan.perf.links import load_links
from hetplan.perf.measured import (Measurement, Predictor, cross_validated_errors,
                                   error_summary, fit_step_overhead, load_measurements)

CAT = load_catalog()
H100 = CAT.gpu("H100-SXM")


def test_fit_gemm_recovers_efficiencies():
    rows = []
    for m in (1, 4, 2048, 4096, 8192):
        for n, k in ((8192, 8192), (28672, 8192), (4096, 4096)):
            flops_ms = 2 * m * n * k / (H100.tflops("bf16") * 1e12) * 1e3
            bytes_ms = (2 * n * k + 2 * m * (n + k)) / H100.mem_bw_bytes_per_s * 1e3
            lat = flops_ms / 0.8 if m >= 2048 else bytes_ms / 0.7
            rows.append({"gemm_dtype": "bfloat16", "m": m, "n": n, "k": k, "latency": lat})
            fp8_ms = 2 * m * n * k / (H100.tflops("fp8") * 1e12) * 1e3
            rows.append({"gemm_dtype": "fp8", "m": m, "n": n, "k": k, "latency": fp8_ms / 0.6})
    fitted = fit_gemm(pd.DataFrame(rows), H100)
    assert fitted["compute_bf16"] == pytest.approx(0.8)
    assert fitted["compute_fp8"] == pytest.approx(0.6)
    assert fitted["memory"] == pytest.approx(0.7)


def test_fit_attention_recovers_efficiency():
    rows = []
    for b, s in ((1, 4096), (2, 8192), (4, 2048), (8, 1024)):
        flops = b * 4 * 64 * 128 * s * (s + 1) / 2
        rows.append({"batch_size": b, "isl": s, "num_heads": 64, "head_dim": 128,
                     "kv_cache_dtype": "bfloat16", "window_size": 0,
                     "latency": flops / (H100.tflops("bf16") * 1e12 * 0.45) * 1e3})
    assert fit_context_attention(pd.DataFrame(rows), H100) == pytest.approx(0.45)


def test_fit_allreduce_recovers_efficiency():
    link = load_links().intra_node(H100)
    rows = []
    for n in (2, 4, 8):
        for elems in (2**19, 2**21, 2**23, 2**25):
            ring = 2 * (n - 1) / n * elems * 2 / (link.bandwidth_gbit_per_s * 1e9 / 8 * 0.65)
            rows.append({"kernel_source": "vLLM_custom_graph", "num_gpus": n,
                         "message_size": elems,
                         "latency": (ring + 2 * (n - 1) * link.latency_us * 1e-6) * 1e3})
    fitted = fit_allreduce(pd.DataFrame(rows), H100)
    assert fitted[0] == pytest.approx(0.65, abs=1e-3)
    assert fitted[2] == fitted[4] == fitted[8] == pytest.approx(0.65, abs=1e-3)


def test_calibration_file_round_trip(tmp_path):
    c = default_calibration("H100-SXM").model_copy(update={"compute_efficiency": 0.77})
    save_calibration(c, tmp_path / "H100-SXM.yaml")
    assert load_calibration_file(tmp_path / "H100-SXM.yaml") == c


def test_bad_calibration_file_names_field(write):
    p = write("c.yaml", json.dumps({**default_calibration("X").model_dump(),
                                    "memory_efficiency": 1.7}))
    with pytest.raises(InputError, match=r"c\.yaml: memory_efficiency"):
        load_calibration_file(p)


def _rows():
    rows = []
    for i, (phase, b, n) in enumerate([("decode", 1, 1024), ("decode", 16, 2048),
                                       ("decode", 64, 512), ("prefill", 1, 2048),
                                       ("prefill", 4, 512), ("prefill", 1, 8192)]):
        rows.append(Measurement(id=f"r{i}", phase=phase, model="llama-3.1-8b", gpu="H100-SXM",
                                tp=1, weight_dtype="bf16", kv_dtype="bf16", batch=b,
                                input_tokens=n, context_tokens=n, measured_ms=1.0))
    return rows


def test_fit_step_overhead_recovers_known_value():
    base = default_calibration("H100-SXM")
    truth = Predictor(CAT, {"H100-SXM": base.model_copy(   # both on the fit's grids
        update={"step_overhead_ms": 3.5, "kernel_overhead_us": 1.0})})
    rows = [Measurement(**{**r.__dict__, "measured_ms": truth(r)}) for r in _rows()]
    pred = Predictor(CAT, {"H100-SXM": base})
    fitted = fit_step_overhead(pred, "H100-SXM", rows, base)
    assert fitted.step_overhead_ms == pytest.approx(3.5)
    assert fitted.kernel_overhead_us == pytest.approx(1.0)
    assert "fitted to 6 end-to-end rows" in fitted.provenance.notes
    assert fitted.layer_overhead_us == base.layer_overhead_us   # the truth used the base value
    errs = cross_validated_errors(Predictor(CAT, {"H100-SXM": base}), rows, folds=3)
    summary = error_summary(rows, errs)
    assert {s["phase"] for s in summary} == {"decode", "prefill"}
    assert all(s["median_abs_pct"] < 1e-6 for s in summary)


def test_load_measurements_rejects_bad_rows(write):
    header = ("id,phase,model,gpu,tp,weight_dtype,kv_dtype,batch,input_tokens,output_tokens,"
              "context_tokens,measured_ms,metric,engine,source\n")
    ok = "a,decode,llama-3.1-8b,H100-SXM,1,bf16,bf16,8,512,128,,7.5,tpot,vllm,x\n"
    rows = load_measurements(write("m.csv", header + ok))
    assert rows[0].context_tokens == 512 + 64
    with pytest.raises(InputError, match=r"m2\.csv: line 3: phase must be"):
        load_measurements(write("m2.csv", header + ok + ok.replace("decode", "both")))
    with pytest.raises(InputError, match=r"line 2: measured_ms, batch and tp must be > 0"):
        load_measurements(write("m3.csv", header + ok.replace("7.5", "-1")))
    with pytest.raises(InputError, match="missing columns: metric"):
        load_measurements(write("m4.csv", header.replace("metric,", "") + "x\n"))


def test_bench_json_import(write):
    d = {"completed": 100, "total_input_tokens": 100 * 1000, "total_output_tokens": 100 * 200,
         "max_concurrency": 1, "median_tpot_ms": 8.1, "median_ttft_ms": 45.0,
         "hetplan_gpu": "H100-SXM", "hetplan_tp": "1", "hetplan_model": "llama-3.1-8b"}
    rows = measurements_from_bench(write("b.json", json.dumps(d)))
    assert [r.phase for r in rows] == ["decode", "prefill"]
    assert rows[0].context_tokens == 1100 and rows[1].measured_ms == 45.0
    d.pop("hetplan_gpu")
    with pytest.raises(InputError, match="unknown gpu"):
        measurements_from_bench(write("c.json", json.dumps(d)))
    assert np.isfinite(rows[0].measured_ms)


def test_calibrate_run_smoke_on_cpu(tmp_path):
    """The PyTorch microbenchmark path end to end, on the CPU (skipped without torch; on a
    GPU machine run `hetplan calibrate run --gpu NAME` for real figures)."""
    pytest.importorskip("torch")
    import subprocess
    import sys
    out = tmp_path / "cal.yaml"
    r = subprocess.run([sys.executable, "-m", "hetplan.cli", "calibrate", "run", "--gpu",
                        "H100-SXM", "--model", "llama-3.1-8b", "--device", "cpu", "--quick",
                        "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    cal = load_calibration_file(out)
    assert cal.provenance.method == "kernel microbenchmarks (hetplan calibrate run)"
    assert 0 < cal.compute_efficiency < 0.5      # a CPU reaches a sliver of H100 peak


def test_allreduce_fit_hand_computed():
    """A link of 800 Gbit/s (100 GB/s) and 1 us latency: a 2-GPU ring moves the whole
    message once each way, so 100 MB in 1 ms + 2 us is 100% and twice that is 50%."""
    from hetplan.perf.allreduce_bench import fit_collective_efficiency
    from hetplan.perf.links import Link
    link = Link(name="t", kind="intra_node", bandwidth_gbit_per_s=800.0, efficiency=1.0,
                latency_us=1.0)
    ideal = 1e8 / 1e11 + 2e-6
    eff = fit_collective_efficiency({2: [(int(1e8), ideal)], 4: [(int(1e8), 2 * ideal)]}, link)
    assert eff[2] == 1.0
    # 4 GPUs: 1.5 x 100 MB / 100 GB/s + 6 us at 100%, measured 2 x the 2-GPU ideal
    assert eff[4] == round((1.5e-3 + 6e-6) / (2 * ideal), 3)


def test_allreduce_benchmark_runs_between_cpu_processes():
    """The torch.distributed path end to end with gloo on the CPU (a smoke test: CPU
    numbers say nothing about a GPU link)."""
    pytest.importorskip("torch")
    from hetplan.perf.allreduce_bench import time_allreduce
    rows = time_allreduce(2, "gloo", sizes=(2**12, 2**16), reps=2)
    assert [b for b, _ in rows] == [2**12, 2**16]
    assert all(t > 0 for _, t in rows)


def test_same_silicon_gpu_uses_its_siblings_measurements():
    """A100-40G-SXM has no measurements of its own and shares the GA100 SXM4 compute of
    A100-80G-SXM: it takes that GPU's calibration and op tables (fractions of its own peaks),
    so a compute-bound prefill is no faster on it than on the 80 GB part, and decode, which
    streams weights over its slower HBM2, is slower."""
    from hetplan.model import load_model
    from hetplan.perf import PerfModel, load_calibrations
    from hetplan.perf.calibration import SAME_SILICON
    from hetplan.perf.optables import load_optables
    from hetplan.perf.shape import ReplicaShape

    cals, tables = load_calibrations(), load_optables()
    for gpu, src in SAME_SILICON.items():
        assert CAT.gpu(gpu).dense_tflops == CAT.gpu(src).dense_tflops
        assert cals[gpu].gpu == gpu and not cals[gpu].is_default
        assert cals[gpu].model_dump(exclude={"gpu", "provenance"}) == \
            cals[src].model_dump(exclude={"gpu", "provenance"})
        assert src in cals[gpu].provenance.measured_on
        assert tables[gpu].gpu == gpu and tables[gpu].gemm_efficiency == tables[src].gemm_efficiency
    pm = PerfModel(load_model("llama-3.1-8b"), CAT)
    small, big = ReplicaShape("A100-40G-SXM", 1), ReplicaShape("A100-80G-SXM", 1)
    for prompt in (256, 512, 2048):     # with the defaults, 256 tokens was 11% faster on 40 GB
        assert pm.prefill_time_s(small, prompt) >= pm.prefill_time_s(big, prompt)
    assert pm.decode_step_s(small, 8, 2048) > pm.decode_step_s(big, 8, 2048)
