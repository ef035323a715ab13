"""CLI: `hetplan workload stats` (summarise a trace or spec) and `hetplan workload sample`
(generate a trace from a synthetic spec and write it as CSV or JSONL)."""

from __future__ import annotations

from pathlib import Path

import typer

from hetplan.bounds import (DEFAULT_SLOT_S, MAX_CLASSES_PER_AXIS, MAX_DURATION_S,
                            MAX_HORIZON_S, MIN_SLOT_S, MIN_WINDOW_S)
from hetplan.cli.options import AsJson, Seed, check_out_file, new_app
from hetplan.errors import InputError

workload_app = new_app(help="Inspect trace files and generate synthetic traces.")


def parse_column_map(items: list[str] | None) -> dict[str, str] | None:
    """['input_tokens=prompt_len', ...] -> {'input_tokens': 'prompt_len', ...}."""
    if not items:
        return None
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise InputError(f"expected KEY=COLUMN, got {item!r}", field="--column-map")
        if key.strip() in out:
            raise InputError(f"{key.strip()} given twice", field="--column-map")
        out[key.strip()] = value.strip()
    return out


def _is_spec(path: Path) -> bool:
    return path.suffix.lower() in (".yaml", ".yml")


def _stats_text(st: dict) -> str:
    from hetplan.tables import fmt_num, text_table

    r = st["rate_rps"]
    lines = [f"trace     {st['name']} ({st['source']})",
             f"requests  {st['requests']:,} over {fmt_num(st['duration_s'])} s",
             f"rate      mean {fmt_num(r['mean'])} req/s; {fmt_num(r['window_s'])}-s windows "
             f"p50 {fmt_num(r['p50'])}, p95 {fmt_num(r['p95'])}, p99 {fmt_num(r['p99'])}",
             f"          as requests see it (planning_rate rQ): p50 {fmt_num(r['r50'])}, "
             f"p90 {fmt_num(r['r90'])}, p95 {fmt_num(r['r95'])}"]
    rows = [[k.replace("_tokens", "")] + [fmt_num(st[k][q]) for q in
                                          ("mean", "p50", "p90", "p99", "max")]
            for k in ("input_tokens", "output_tokens", "prefix_tokens") if k in st]
    lines += ["", text_table(["tokens", "mean", "p50", "p90", "p99", "max"], rows), ""]
    if "prefix_tokens" in st:
        lines.append(f"prefix    {100 * st['prefix_tokens']['share_of_input']:.1f}% of input "
                     "tokens shared with earlier requests")
    if "sessions" in st:
        s = st["sessions"]
        lines.append(f"sessions  {s['count']:,} (mean {fmt_num(s['mean_turns'])} requests each"
                     + (f"; {s['requests_without_session']:,} without one)"
                        if s["requests_without_session"] else ")"))
    if "load" in st:
        ld = st["load"]
        lines.append(f"file      {ld['format']} format, {ld['rows_read']:,} rows read, "
                     f"{ld['rows_kept']:,} kept, {ld['bad_rows']:,} bad, "
                     f"{ld['failed_requests']:,} failed, {ld['out_of_order']:,} out of order")
        lines += [f"          {n}" for n in ld["notes"]]
        for key in ("first_bad_lines", "first_bad_rows"):
            if ld.get(key):
                reasons = ", ".join(f"{k}: {v:,}" for k, v in ld["bad_by_reason"].items())
                lines.append(f"          bad {key.split('_')[-1]}: "
                             f"{', '.join(map(str, ld[key]))} ... ({reasons})")
    lines += _profile_lines(st)
    b = st["classes_binning"]
    lines += ["", f"classes ({b['method']} bins, {b['n_input']} x {b['n_output']}):",
              text_table(["class", "requests", "share", "rate_rps", "in_mean", "in_p90",
                          "out_mean", "out_p90"],
                         [[c["name"], f"{c['count']:,}", f"{100 * c['share']:.1f}%",
                           fmt_num(c["rate_rps"]), fmt_num(c["input_tokens"]["mean"]),
                           fmt_num(c["input_tokens"]["p90"]),
                           fmt_num(c["output_tokens"]["mean"]),
                           fmt_num(c["output_tokens"]["p90"])] for c in st["classes"]])]
    return "\n".join(lines)


PROFILE_SLOTS_SHOWN = 48      # `workload stats` lists the per-slot rates up to this many


def _profile_lines(st: dict) -> list[str]:
    """The rate profile (`hetplan schedule`'s demand per slot), or why there is none."""
    from hetplan.tables import fmt_num

    if "profile_error" in st:
        return [f"profile   none: {st['profile_error']}"]
    p = st["profile"]
    lines = [f"profile   {p['slots']} slot{'s' * (p['slots'] != 1)} of "
             f"{fmt_num(p['slot_s'])} s ({p['planning_rate']} per slot): peak "
             f"{fmt_num(p['peak_rps'])}, mean {fmt_num(p['mean_rps'])}, least "
             f"{fmt_num(p['min_rps'])} req/s"]
    if 1 < p["slots"] <= PROFILE_SLOTS_SHOWN:
        lines.append("          req/s per slot: " + " ".join(fmt_num(r) for r in p["total_rps"]))
    return lines


def register(app: typer.Typer, echo_json) -> None:
    app.add_typer(workload_app, name="workload")

    @workload_app.command("stats")
    def stats_cmd(
        trace: Path = typer.Argument(..., help="Trace file (CSV/JSONL/Parquet, any supported "
                                     "format) or a synthetic spec YAML."),
        format: str = typer.Option(None, "--format", help="azure | burstgpt | mooncake | "
                                   "generic | csv | jsonl | parquet (default: detected)."),
        column_map: list[str] = typer.Option(None, "--column-map", help="KEY=COLUMN for a "
                                             "generic file; KEY: arrival_s|timestamp, "
                                             "input_tokens, output_tokens, session_id, "
                                             "prefix_tokens. Repeat."),
        time_unit: str = typer.Option(None, "--time-unit", help="s | ms | us | datetime."),
        classes: int = typer.Option(4, "--classes", min=1, max=MAX_CLASSES_PER_AXIS,
                                    help="Bins per axis."),
        method: str = typer.Option("log", "--method", help="log | quantile bins."),
        window: float = typer.Option(60.0, "--window", min=MIN_WINDOW_S, max=MAX_DURATION_S,
                                     help="Rate window, s."),
        on_bad: str = typer.Option("skip", "--on-bad", help="skip | error for bad rows."),
        slot: float = typer.Option(DEFAULT_SLOT_S, "--slot", min=MIN_SLOT_S,
                                   max=MAX_HORIZON_S, help="Rate-profile slot, s "
                                   "(`hetplan schedule`'s demand per slot)."),
        slot_rate: str = typer.Option("mean", "--slot-rate", help="Rate inside a slot: mean | "
                                      "p<q> | r<q> (over --window windows)."),
        max_rows: int = typer.Option(None, "--max-rows", min=1, help="Read at most N rows."),
        seed: Seed = None,
        as_json: AsJson = False,
    ) -> None:
        """Requests, duration, rates, token percentiles, prefix share, bad rows, classes."""
        from hetplan.workload import generate, load_spec_file, load_trace
        from hetplan.workload.stats import trace_stats
        from hetplan.workload.trace import parse_planning_rate

        if method not in ("log", "quantile"):
            raise InputError(f"method must be log or quantile, not {method!r}",
                             field="--method")
        if _is_spec(trace):
            spec = load_spec_file(trace)
            t = generate(spec if seed is None else spec.model_copy(update={"seed": seed}))
        else:
            t = load_trace(trace, format=format, column_map=parse_column_map(column_map),
                           time_unit=time_unit, on_bad=on_bad, max_rows=max_rows,
                           warn=not as_json)
        try:
            parse_planning_rate(slot_rate)
        except ValueError as e:
            raise InputError(str(e), field="--slot-rate") from None
        st = trace_stats(t, classes, method=method, window_s=window, slot_s=slot,
                         slot_rate=slot_rate)
        if as_json:
            echo_json(st)
        else:
            typer.echo(_stats_text(st))

    @workload_app.command("sample")
    def sample_cmd(
        spec: Path = typer.Option(..., "--spec", help="Synthetic spec YAML (or a scenario "
                                  "with a synthetic workload), e.g. workloads/specs/*.yaml."),
        out: Path = typer.Option(..., "--out", callback=check_out_file,
                                 help="Output trace: .csv or .jsonl."),
        seed: Seed = None,
    ) -> None:
        """Generate the spec's trace and write it (atomically); load_trace reads it back."""
        from hetplan.workload import generate, load_spec_file, save_trace

        s = load_spec_file(spec)
        if seed is not None:
            s = s.model_copy(update={"seed": seed})
        t = generate(s)
        if t.num_requests == 0:
            raise InputError("the spec generates no requests (rate x duration too small)",
                             file=spec)
        save_trace(t, out)
        typer.echo(f"wrote {t.num_requests:,} requests over {t.duration_s:,.1f} s to {out}")
