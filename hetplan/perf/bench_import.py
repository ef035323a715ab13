"""Read `vllm bench serve` result JSON files as end-to-end measurements.

vLLM writes (with --save-result) keys such as `max_concurrency`, `median_ttft_ms`,
`median_tpot_ms`, `total_input_tokens`, `total_output_tokens`, `completed`,
`request_throughput`, `mean_e2el_ms`. The GPU, TP and model are taken from the arguments or
from `--metadata hetplan_gpu=... hetplan_tp=... hetplan_model=...` keys that hetplan's
emitted bench scripts add.
Each file gives a decode row (median TPOT at its concurrency, context = mean input + half the
mean output) and, at concurrency 1 only, a prefill row (median TTFT ~ one prefill step).
"""

from __future__ import annotations

from pathlib import Path

from hetplan.errors import InputError
from hetplan.io import load_json
from hetplan.perf.measured import Measurement


def measurements_from_bench(path: str | Path, gpu: str | None = None, tp: int | None = None,
                            model: str | None = None, weight_dtype: str = "bf16",
                            kv_dtype: str = "bf16") -> list[Measurement]:
    path = Path(path)
    d = load_json(path)
    if not isinstance(d, dict):
        raise InputError("expected a vllm bench serve result object", file=path)
    gpu = gpu or d.get("hetplan_gpu")
    try:
        tp = int(tp or d.get("hetplan_tp") or 0)
    except (TypeError, ValueError):
        raise InputError(f"must be a whole number, not {d.get('hetplan_tp')!r}", file=path,
                         field="hetplan_tp") from None
    model = model or d.get("hetplan_model")
    for name, val in (("gpu", gpu), ("tp", tp), ("model", model)):
        if not val:
            raise InputError(f"unknown {name}: pass --{name} or run the bench with "
                             f"--metadata hetplan_{name}=...", file=path)
    try:
        completed = int(d["completed"])
        mean_in = d["total_input_tokens"] / completed
        mean_out = d["total_output_tokens"] / completed
        conc = d.get("max_concurrency") or (d["request_throughput"] * d["mean_e2el_ms"] / 1e3)
        tpot = float(d["median_tpot_ms"])
    except KeyError as e:
        raise InputError(f"missing field {e}", file=path) from None
    except (TypeError, ValueError, ZeroDivisionError) as e:
        raise InputError(f"bad value in completed, total_*_tokens, max_concurrency, "
                         f"request_throughput, mean_e2el_ms or median_tpot_ms ({e})",
                         file=path) from None
    batch = max(1, int(round(conc)))
    common = dict(model=model, gpu=gpu, tp=tp, weight_dtype=weight_dtype, kv_dtype=kv_dtype,
                  source=str(path))
    rows = [Measurement(id=f"{path.stem}:decode", phase="decode", batch=batch,
                        input_tokens=int(mean_in), context_tokens=mean_in + mean_out / 2,
                        measured_ms=tpot, metric="median_tpot_ms", **common)]
    if batch == 1 and d.get("median_ttft_ms"):
        rows.append(Measurement(id=f"{path.stem}:prefill", phase="prefill", batch=1,
                                input_tokens=int(mean_in), context_tokens=mean_in,
                                measured_ms=float(d["median_ttft_ms"]),
                                metric="median_ttft_ms", **common))
    return rows
