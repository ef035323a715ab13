"""Compare a GPU's engine-bench measurements (scripts/gpu_engine_bench.py output) with
hetplan's perf model: GEMM and decode-attention efficiency against the op table the planner
reads, and whole layer-stack steps against the planner's step time.

Usage: python -m scripts.engine_bench_report [FILE] [--gpu H200]
(default FILE: catalogs/calibration/microbench/H200.llama-3.1-8b.engine_bench.json)
"""

from __future__ import annotations

import argparse
import statistics

from hetplan.catalog import load_catalog
from hetplan.io import catalogs_dir
from hetplan.model import load_model
from hetplan.perf import load_calibrations
from hetplan.perf.engine_bench import (FP8_RECIPES, STEP_KINDS, bench_model,
                                       decode_attention_efficiencies, fp8_recipe_layer_ms,
                                       gemm_efficiencies, load_engine_bench,
                                       predicted_step_ms, step_rows)
from hetplan.perf.estimator import PerfModel
from hetplan.perf.optables import load_optables

DEFAULT = catalogs_dir() / "calibration" / "microbench" / "H200.llama-3.1-8b.engine_bench.json"


def step_table(data: dict, gpu: str) -> list[dict]:
    pm = PerfModel(load_model(bench_model(data)), load_catalog(),
                   calibrations=dict(load_calibrations()))
    out = []
    for r in step_rows(data):
        pred = predicted_step_ms(pm, gpu, r, int(data.get("tp", 1)))
        out.append({**r.__dict__, "predicted_ms": pred,
                    "error_pct": (pred - r.measured_ms) / r.measured_ms * 100})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file", nargs="?", default=str(DEFAULT))
    ap.add_argument("--gpu", default="H200", help="the catalog GPU to price the steps on "
                    "(another GPU of the same die, e.g. H100-SXM, for its compute-bound steps)")
    args = ap.parse_args(argv)
    data = load_engine_bench(args.file)
    gpu = load_catalog().gpu(args.gpu)
    tables = load_optables().get(args.gpu)
    print(f"# {bench_model(data)} TP {data.get('tp', 1)} rank on "
          f"{data['env'].get('device')} ({data['env'].get('torch')}), priced as {args.gpu}")
    if data.get("gemm_bf16") or data.get("gemm_fp8"):
        gemm_section(data, gpu, tables)
    if data.get("decode_attention"):
        attention_section(data, gpu, tables)
    if data.get("fp8_recipes"):
        recipe_section(data, gpu, tables)
    if not step_rows(data):
        return 0
    print("\n## Whole steps: measured vs planner (less step_overhead_ms and all-reduce)")
    print("| kind | phase | weights | batch | tokens | context | measured ms | planner ms | "
          "error |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = step_table(data, args.gpu)
    for r in rows:
        print(f"| {r['kind']} | {r['phase']} | {r['weights']} | {r['batch']} | {r['tokens']} "
              f"| {r['context']} | {r['measured_ms']:.2f} | {r['predicted_ms']:.2f} | "
              f"{r['error_pct']:+.1f}% |")
    for kind in STEP_KINDS:
        errs = [abs(r["error_pct"]) for r in rows if r["kind"] == kind]
        if errs:
            print(f"{kind}: {len(errs)} steps, median |error| {statistics.median(errs):.1f}%, "
                  f"max {max(errs):.1f}%")
    return 0


def gemm_section(data: dict, gpu, tables) -> None:
    print("\n## GEMM efficiency: measured (torch, cuBLAS) vs op table")
    print("| dtype | m | name | measured ms | measured eff | table eff |")
    print("|---|---|---|---|---|---|")
    for g in gemm_efficiencies(data, gpu):
        t = tables.gemm_efficiency_at(g["dtype"], g["m"], g["weight_elements"]) if tables \
            else None
        print(f"| {g['dtype']} | {g['m']} | {g['name']} | {g['measured_ms']:.4f} | "
              f"{g['efficiency']:.3f} | {t.value:.3f} |" if t else "| - |")

def recipe_section(data: dict, gpu, tables) -> None:
    print("\n## One layer's FP8 GEMMs (ms) by activation recipe, and the op table's price")
    print("| m | " + " | ".join(FP8_RECIPES) + " | table |")
    print("|---|" + "---|" * (len(FP8_RECIPES) + 1))
    for m, col in sorted(fp8_recipe_layer_ms(data, gpu, tables).items()):
        print(f"| {m} | " + " | ".join(f"{col[c]:.3f}" for c in FP8_RECIPES + ("table",)) + " |")


def attention_section(data: dict, gpu, tables) -> None:
    print("\n## Decode attention (bf16 KV): measured (torch SDPA) vs op table")
    print("| batch | context | measured ms | measured eff | table eff |")
    print("|---|---|---|---|---|")
    for a in decode_attention_efficiencies(data, gpu):
        t = tables.decode_attention_efficiency_at(a["batch"], a["context"]) if tables else None
        print(f"| {a['batch']} | {a['context']} | {a['measured_ms']:.4f} | "
              f"{a['efficiency']:.3f} | {t.value:.3f} |" if t else "| - |")


if __name__ == "__main__":
    raise SystemExit(main())
