"""CLI: `hetplan estimate` and `hetplan calibrate ...` (performance model and calibration)."""

from __future__ import annotations

from pathlib import Path

import typer

from hetplan.bounds import MAX_BATCH, MAX_DP, MAX_PP, MAX_TOKENS, MAX_TP
from hetplan.cli.options import AsJson, as_json, check_out_dir, check_out_file, new_app
from hetplan.errors import InputError


calibrate_app = new_app(help="Fit per-GPU efficiencies to measurements.")


def register(app: typer.Typer, echo_json) -> None:
    app.add_typer(calibrate_app, name="calibrate")

    @app.command("estimate")
    def estimate_cmd(
        model: str = typer.Option(..., help="Bundled model key, HF id or config.json path."),
        gpu: str = typer.Option(..., help="GPU name from the catalog (hetplan catalog list)."),
        tp: int = typer.Option(1, help="Tensor-parallel GPUs."),
        pp: int = typer.Option(1, help="Pipeline-parallel stages."),
        batch: int = typer.Option(1, help="Concurrent requests (one static batch)."),
        input: int = typer.Option(..., "--input", help="Prompt tokens per request."),
        output: int = typer.Option(..., "--output", help="Generated tokens per request."),
        weight_dtype: str = typer.Option("bf16", help="bf16 | fp16 | fp8 | int8 | fp4"),
        kv_dtype: str = typer.Option("bf16", help="bf16 | fp8"),
        ep: bool = typer.Option(False, "--ep", help="MoE expert parallelism (vLLM "
                                "--enable-expert-parallel)."),
        dp: int = typer.Option(1, help="Data-parallel attention ranks (with --ep)."),
        as_json: as_json("Print one JSON object.") = False,
    ) -> None:
        """Predict TTFT, TPOT, throughput and memory fit of one replica shape."""
        from hetplan.catalog import load_catalog
        from hetplan.dtypes import DTYPES
        from hetplan.model import load_model
        from hetplan.perf import PerfModel, ReplicaShape
        from hetplan.perf.estimate import estimate

        for name, val in (("--weight-dtype", weight_dtype), ("--kv-dtype", kv_dtype)):
            if val not in DTYPES:
                raise InputError(f"unknown dtype {val!r}; expected one of {', '.join(DTYPES)}",
                                 field=name)
        for name, val, most in (("--tp", tp, MAX_TP), ("--pp", pp, MAX_PP),
                                ("--batch", batch, MAX_BATCH), ("--input", input, MAX_TOKENS),
                                ("--output", output, MAX_TOKENS), ("--dp", dp, MAX_DP)):
            if not 1 <= val <= most:
                raise InputError(f"must be in [1, {most:,}]", field=name)
        cat = load_catalog()
        cat.gpu(gpu, field="--gpu")
        pm = PerfModel(load_model(model, field="--model"), cat)
        shape = ReplicaShape(gpu, tp, pp, weight_dtype, kv_dtype, ep, dp)
        if (ep or dp > 1) and (why := pm.check(shape)):
            raise InputError(why, field="--dp" if dp > 1 else "--ep")
        est = estimate(pm, shape, batch, input, output)
        if as_json:
            echo_json(est.model_dump())
            return
        typer.echo(f"{est.model} on {est.shape}, batch {batch}, {input} in / {output} out")
        typer.echo(f"  TTFT        {est.ttft_ms:9.1f} ms   (prefill of the whole batch)")
        typer.echo(f"  TPOT        {est.tpot_ms:9.2f} ms   (decode step at mean context)")
        typer.echo(f"  throughput  {est.throughput_tok_s:9.0f} tok/s generated "
                   f"(decode-only {est.decode_tok_s:.0f} tok/s)")
        typer.echo(f"  memory/GPU  weights {est.weights_gb_per_gpu:.1f} GB, KV needed "
                   f"{est.kv_gb_needed_per_gpu:.1f} GB of {est.kv_gb_available_per_gpu:.1f} GB")
        typer.echo(f"  fits        {'yes' if est.fits else 'NO: ' + est.fit_reason}"
                   f" (max batch at full context: {est.max_batch_at_full_context})")
        typer.echo(f"  calibration {est.calibration}")
        typer.echo(f"  note        approximate: {est.approximate_note}")


@calibrate_app.command("show")
def calibrate_show(as_json: AsJson = False) -> None:
    """List the calibration of every GPU (measured files, or the default)."""
    from hetplan.catalog import load_catalog
    from hetplan.perf import default_calibration, load_calibrations
    from hetplan.tables import text_table

    cals = load_calibrations()
    rows = []
    for g in load_catalog().gpus:
        c = cals.get(g) or default_calibration(g)
        rows.append([g, c.compute_efficiency, c.attention_efficiency, c.memory_efficiency,
                     c.collective_efficiency, c.step_overhead_ms, c.provenance.method])
    typer.echo(text_table(["gpu", "compute", "attention", "memory", "collective",
                           "step_ms", "source"], rows))


@calibrate_app.command("run")
def calibrate_run(
    gpu: str = typer.Option(..., help="Catalog name of the local GPU."),
    model: str = typer.Option("llama-3.1-8b", help="Model whose shapes to benchmark."),
    tp: int = typer.Option(1, help="TP degree whose per-rank shapes to benchmark."),
    device: str = typer.Option("cuda", help="torch device (cpu only to smoke-test)."),
    quick: bool = typer.Option(False, help="Fewer shapes and repetitions."),
    out: Path = typer.Option(None, callback=check_out_file,
                             help="Output file (default catalogs/calibration/GPU.yaml)."),
) -> None:
    """Run GEMM and attention microbenchmarks with PyTorch and write a calibration file."""
    from hetplan.catalog import load_catalog
    from hetplan.model import load_model
    from hetplan.perf.calibration import calibration_dir, save_calibration
    from hetplan.perf.microbench import calibration_from_microbench, run_microbenchmarks

    if not 1 <= tp <= MAX_TP:
        raise InputError(f"must be in [1, {MAX_TP}]", field="--tp")
    g = load_catalog().gpu(gpu, field="--gpu")   # every input is checked before torch
    spec = load_model(model, field="--model")
    gemm, attn = run_microbenchmarks(spec, g, tp, device, quick,
                                     progress=lambda s: typer.echo(s, err=True))
    import torch                    # present: run_microbenchmarks needs it
    from hetplan.perf.microbench import copy_bandwidth_tbps
    copy_tbps = copy_bandwidth_tbps(device, gib=0.25 if quick else 2.0)
    typer.echo(f"device-to-device copy: {copy_tbps:.2f} TB/s", err=True)
    cal = calibration_from_microbench(gemm, attn, g, spec, device, torch.__version__, copy_tbps)
    n_gpus = torch.cuda.device_count() if device.startswith("cuda") else 0
    if n_gpus >= 2:
        cal = _with_allreduce(cal, g, n_gpus, quick)
    else:
        typer.echo("all-reduce: fewer than 2 GPUs visible, collective efficiency left at "
                   "its default", err=True)
    path = out or calibration_dir() / f"{gpu}.yaml"
    save_calibration(cal, path)
    typer.echo(f"wrote {path}: compute {cal.compute_efficiency}, attention "
               f"{cal.attention_efficiency}, memory {cal.memory_efficiency}")


def _with_allreduce(cal, gpu, n_gpus: int, quick: bool):
    """Time NCCL all-reduces over 2, 4, 8 of the local GPUs; fit efficiency per TP size."""
    from hetplan.perf.allreduce_bench import fit_collective_efficiency, time_allreduce
    from hetplan.perf.links import load_links

    samples = {}
    for n in (w for w in (2, 4, 8) if w <= n_gpus):
        samples[n] = time_allreduce(n, "nccl", reps=5 if quick else 20)
        typer.echo(f"all-reduce over {n} GPUs: " + ", ".join(
            f"{b >> 20} MiB {t * 1e6:.0f} us" for b, t in samples[n]), err=True)
    by_tp = fit_collective_efficiency(samples, load_links().intra_node(gpu))
    median = round(float(sorted(by_tp.values())[len(by_tp) // 2]), 3)
    notes = cal.provenance.notes.replace("collective efficiency and ", "") + \
        f"; all-reduce measured over {', '.join(map(str, samples))} GPUs (NCCL)"
    return cal.model_copy(update={
        "collective_efficiency": median, "collective_efficiency_by_tp": by_tp,
        "provenance": cal.provenance.model_copy(update={"notes": notes})})


@calibrate_app.command("import-aiconfigurator")
def calibrate_import_aic(
    source: Path = typer.Argument(..., help="aiconfigurator-core wheel or systems/data dir."),
    out_dir: Path = typer.Option(None, callback=check_out_dir,
                                 help="Default: catalogs/calibration."),
    system: list[str] = typer.Option(None, help="Only these systems or GPU names."),
) -> None:
    """Fit efficiencies to aiconfigurator's measured kernel tables (one file per GPU)."""
    from hetplan.catalog import load_catalog
    from hetplan.perf.aiconfig_import import import_aiconfigurator
    from hetplan.perf.calibration import calibration_dir, save_calibration

    out_dir = out_dir or calibration_dir()
    for cal in import_aiconfigurator(source, load_catalog(), system or None):
        save_calibration(cal, out_dir / f"{cal.gpu}.yaml")
        typer.echo(f"{cal.gpu}: compute {cal.compute_efficiency} "
                   f"{cal.compute_efficiency_by_dtype}, attention {cal.attention_efficiency}, "
                   f"memory {cal.memory_efficiency}, collective {cal.collective_efficiency}")


@calibrate_app.command("import-optables")
def calibrate_import_optables(
    source: Path = typer.Argument(..., help="aiconfigurator-core wheel or systems/data dir."),
    out: Path = typer.Option(None, callback=check_out_dir,
                             help="Default: catalogs/calibration/optables."),
    system: list[str] = typer.Option(None, help="Only these systems or GPU names."),
) -> None:
    """Derive per-operation tables (GEMM, attention, all-reduce) from aiconfigurator's
    measured kernel tables (one file per GPU; progress on stderr)."""
    from hetplan.catalog import load_catalog
    from hetplan.perf.optable_import import import_optables
    from hetplan.perf.optables import optables_dir, save_optables

    out = out or optables_dir()
    for t in import_optables(source, load_catalog(), system or None,
                             progress=lambda line: typer.echo(line, err=True)):
        save_optables(t, out / f"{t.gpu}.yaml")
        typer.echo(str(out / f"{t.gpu}.yaml"))


@calibrate_app.command("fit-overhead")
def calibrate_fit_overhead(
    table: list[Path] = typer.Argument(..., help="Measurement CSVs and/or vllm bench JSONs."),
    gpu: str = typer.Option(None, help="For bench JSONs without hetplan metadata."),
    tp: int = typer.Option(None), model: str = typer.Option(None),
    calibration_dir_opt: Path = typer.Option(None, "--calibration-dir",
                                             callback=check_out_dir),
    include_uncalibrated: bool = typer.Option(False, help="Also GPUs with no kernel data."),
) -> None:
    """Fit each GPU's step and per-kernel overheads to end-to-end measurements (CSV tables or
    vllm bench JSONs) and update its calibration file."""
    _fit_overhead(table, gpu, tp, model, calibration_dir_opt, include_uncalibrated)


@calibrate_app.command("import-bench")
def calibrate_import_bench(
    results: list[Path] = typer.Argument(..., help="`vllm bench serve --save-result` JSONs."),
    gpu: str = typer.Option(None), tp: int = typer.Option(None), model: str = typer.Option(None),
    calibration_dir_opt: Path = typer.Option(None, "--calibration-dir",
                                             callback=check_out_dir),
) -> None:
    """Fit the step overhead to `vllm bench serve` results (same as fit-overhead)."""
    _fit_overhead(results, gpu, tp, model, calibration_dir_opt)


def _fit_overhead(paths, gpu, tp, model, cal_dir, include_uncalibrated=False) -> None:
    from hetplan.catalog import load_catalog
    from hetplan.perf import default_calibration, load_calibrations
    from hetplan.perf.bench_import import measurements_from_bench
    from hetplan.perf.calibration import SAME_SILICON, calibration_dir, save_calibration
    from hetplan.perf.measured import Predictor, fit_step_overhead, load_measurements

    cal_dir = Path(cal_dir) if cal_dir else calibration_dir()
    rows = []
    for p in paths:
        rows += (measurements_from_bench(p, gpu, tp, model) if p.suffix == ".json"
                 else load_measurements(p))
    if not rows:
        raise InputError("no measurement rows to fit", file=paths[-1])
    cals = dict(load_calibrations(str(cal_dir)))
    pred = Predictor(load_catalog(), cals, base=Path(paths[0]).resolve().parent)
    for g in sorted({r.gpu for r in rows}):
        if g in SAME_SILICON and not (cal_dir / f"{g}.yaml").exists():
            typer.echo(f"{g}: skipped (it uses {SAME_SILICON[g]}'s calibration: "
                       "calibration.SAME_SILICON)")
            continue
        if g not in cals and not include_uncalibrated:
            typer.echo(f"{g}: skipped (no kernel calibration; fitting overheads onto default "
                       "efficiencies would absorb their error; --include-uncalibrated to force)")
            continue
        before = cals.get(g) or default_calibration(g)
        after = fit_step_overhead(pred, g, rows, before)
        save_calibration(after, cal_dir / f"{g}.yaml")
        typer.echo(f"{g}: step_overhead_ms {before.step_overhead_ms} -> "
                   f"{after.step_overhead_ms}, kernel_overhead_us {before.kernel_overhead_us} -> "
                   f"{after.kernel_overhead_us} from {sum(r.gpu == g for r in rows)} rows "
                   f"(median abs error {after.provenance.fit_error_pct}%)")
