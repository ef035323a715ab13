"""Hostile inputs (issue 14), one case per finding: each is refused with exit 2 (3 when
infeasible) and one line on stderr naming the file (and field), never a traceback; nothing
is half-written under --out; generated scripts never run a value as a command.

Commands run in-process through `hetplan.cli.main` under a memory and time guard (see
cli_harness.py); the script-execution cases run `python -m hetplan.cli` and bash.
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from cli_harness import (PLAN_FIXTURE, REPO, TINY_SCENARIO, assert_finite_json, run_cli,
                         run_main, snapshot, temp_files)

MODEL_CONFIG = REPO / "tests" / "data" / "models" / "meta-llama-3-8b.json"
TRACE_HEADER = "arrival_s,input_tokens,output_tokens\n"
FAST_S = 5.0                         # "fail fast"
GUARD_S = 3 * FAST_S                 # in-process guard of fail-fast cases: a hang fails here
BOUNDED_S = 30.0                     # "solves within a bounded time"

BASE = TINY_SCENARIO
INVENTORY = {"name": "mini", "nodes": [
    {"id": "l40s-01", "gpu": "L40S", "gpus": 8, "rack": "r1", "fabric": "ib-a", "nic_gbps": 400},
    {"id": "h100-01", "gpu": "H100-SXM", "gpus": 8, "rack": "r1", "fabric": "ib-a",
     "nic_gbps": 3200}]}


def scenario(tmp_path: Path, edit=None, name="s.yaml", **extra) -> Path:
    d = copy.deepcopy(BASE) | extra
    if edit:
        edit(d)
    p = tmp_path / name
    p.write_text(yaml.safe_dump(d, sort_keys=False), encoding="utf-8")
    return p


def synth(d: dict) -> dict:
    return d["workload"]["synthetic"]


def trace_scenario(tmp_path: Path, trace: Path) -> Path:
    return scenario(tmp_path, lambda d: d.update(workload={"trace": str(trace)}))


def plan_file(tmp_path: Path, edit=None, name="plan.json") -> Path:
    d = json.loads(PLAN_FIXTURE.read_text())
    if edit:
        edit(d)
    p = tmp_path / name
    p.write_text(json.dumps(d, indent=2), encoding="utf-8")
    return p


def csv_trace(tmp_path: Path, rows: list[str], name="t.csv") -> Path:
    p = tmp_path / name
    p.write_text(TRACE_HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return p


def assert_refused(r, *files: Path, fields: tuple[str, ...] = (), code: int = 2) -> str:
    """Exit `code`, no traceback, one stderr line naming one of `files` and one of `fields`."""
    assert r.exc is None, r.describe()
    assert "Traceback" not in r.err + r.out, r.describe()
    assert r.code == code, r.describe()
    lines = r.err_lines
    if code == 2:
        assert len(lines) == 1, r.describe()
    line = lines[0] if lines else ""
    if files:
        assert any(Path(f).name in line for f in files), r.describe()
    if fields:
        assert any(f in line for f in fields), r.describe()
    return line


# --- scenario fields -----------------------------------------------------------------------

SCENARIO_CASES = {
    # finding: (edit, command, fields the error may name, fail fast)
    "infinite rate": (lambda d: synth(d)["arrival"].update(rate_rps=float("inf")),
                      "scenario check", ("rate_rps",)),
    "infinite rate, solve": (lambda d: synth(d)["arrival"].update(rate_rps=float("inf")),
                             "solve", ("rate_rps",)),
    "1e7 req/s": (lambda d: (synth(d)["arrival"].update(rate_rps=1e7),
                             synth(d).update(duration_s=600)), "solve",
                  ("rate_rps", "duration_s")),
    "huge duration_s": (lambda d: synth(d).update(duration_s=1e12), "solve",
                        ("duration_s", "rate_rps")),
    "negative seed": (lambda d: synth(d).update(seed=-1), "solve", ("seed",)),
    "infinite budget": (lambda d: d.update(objective="max_goodput",
                                           constraints={"max_tp": 2,
                                                        "budget_usd_per_hour": float("inf")}),
                        "solve", ("budget_usd_per_hour",)),
    "no request": (lambda d: (synth(d)["arrival"].update(rate_rps=0.001),
                              synth(d).update(duration_s=1)), "solve", ()),
    "catalog.gpus: []": (lambda d: d["catalog"].update(gpus=[]), "solve", ("catalog.gpus",)),
    "unknown kv_link": (lambda d: d["constraints"].update(kv_link="no-such-link"), "solve",
                        ("kv_link",)),
}


@pytest.mark.parametrize("case", sorted(SCENARIO_CASES))
def test_scenario_field_refused(tmp_path, case):
    edit, command, fields = SCENARIO_CASES[case]
    p = scenario(tmp_path, edit)
    args = command.split() + [p] + (["--time-limit", "5"] if command == "solve" else [])
    r = run_main(*args, budget_s=GUARD_S)
    assert_refused(r, p, fields=fields)
    assert r.seconds < FAST_S, r.describe()


def test_infinite_ttft_is_refused_or_never_written(tmp_path):
    p = scenario(tmp_path, lambda d: d["slo"].update(ttft_ms=float("inf")))
    out = tmp_path / "out"
    r = run_main("solve", p, "--out", out, "--time-limit", "5")
    if r.code == 2:
        assert_refused(r, p, fields=("slo.ttft_ms",))
        assert snapshot(out) is None
    else:
        assert r.exc is None and r.code == 0, r.describe()
        assert_finite_json((out / "plan.json").read_text())


def test_max_pp_64_solves_in_bounded_time(tmp_path):
    p = scenario(tmp_path, lambda d: d["constraints"].update(max_pp=64))
    r = run_main("solve", p, "--time-limit", "5", budget_s=2 * BOUNDED_S)
    assert r.exc is None and r.code in (0, 3), r.describe()
    assert r.seconds < BOUNDED_S, r.describe()


def test_huge_num_hidden_layers_fails_fast(tmp_path):
    cfg = json.loads(MODEL_CONFIG.read_text()) | {"num_hidden_layers": 10**12}
    (tmp_path / "big.json").write_text(json.dumps(cfg))
    p = scenario(tmp_path, lambda d: d.update(model="big.json"))
    r = run_main("solve", p, "--time-limit", "5", budget_s=GUARD_S)
    assert_refused(r, tmp_path / "big.json", p, fields=("num_hidden_layers", "model"))
    assert r.seconds < FAST_S, r.describe()


# --- malformed scenario files --------------------------------------------------------------

def _deep(tmp_path):
    return b"name: x\nmodel: " + b"[" * 50_000 + b"]" * 50_000 + b"\n"


def _latin1(tmp_path):
    text = yaml.safe_dump(BASE, sort_keys=False) + "description: caf\u00e9 cr\u00e8me\n"
    return text.encode("latin-1")


def _binary(tmp_path):
    return bytes(range(256)) * 8


def _duplicate_key(tmp_path):
    text = yaml.safe_dump(BASE, sort_keys=False)
    return (text + "slo: {ttft_ms: 5, tpot_ms: 5}\n").encode()


def _list_50mb(tmp_path):
    return b"- 1\n" * (50 * 2**20 // 4)


MALFORMED = {"deeply nested YAML": (_deep, ()), "Latin-1 scenario": (_latin1, ()),
             "binary scenario": (_binary, ()), "duplicate top-level key": (_duplicate_key,
                                                                         ("slo",)),
             "50 MB YAML list": (_list_50mb, ())}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_scenario_file(tmp_path, case):
    make, fields = MALFORMED[case]
    p = tmp_path / "bad.yaml"
    p.write_bytes(make(tmp_path))
    r = run_main("scenario", "check", p, budget_s=GUARD_S)
    assert_refused(r, p, fields=fields)
    assert r.seconds < FAST_S, r.describe()


# --- traces --------------------------------------------------------------------------------

def test_gz_that_is_not_gzip(tmp_path):
    p = tmp_path / "t.csv.gz"
    p.write_text(TRACE_HEADER + "0,10,5\n1,10,5\n")
    assert_refused(run_main("workload", "stats", p), p)


def test_truncated_gzip(tmp_path):
    p = tmp_path / "t.csv.gz"
    data = gzip.compress((TRACE_HEADER + "".join(f"{i},10,5\n" for i in range(2000))).encode())
    p.write_bytes(data[: len(data) // 2])
    assert_refused(run_main("workload", "stats", p), p)


ZERO_SPAN = {"one row": ["3.0,100,50"],
             "one instant": ["5.0,100,50"] * 20,
             "timestamps near 1e300": [f"{1e300 * (1 + i * 1e-17)!r},100,50" for i in range(20)]}


@pytest.mark.parametrize("case", sorted(ZERO_SPAN))
def test_zero_span_trace_refused_by_solve(tmp_path, case):
    t = csv_trace(tmp_path, ZERO_SPAN[case])
    p = trace_scenario(tmp_path, t)
    assert_refused(run_main("solve", p, "--time-limit", "5"), t, p)


@pytest.mark.parametrize("case", sorted(ZERO_SPAN))
def test_zero_span_trace_stats_finite(tmp_path, case):
    t = csv_trace(tmp_path, ZERO_SPAN[case])
    r = run_main("workload", "stats", t, "--json")
    assert r.exc is None and r.code in (0, 2), r.describe()
    if r.code == 0:
        assert_finite_json(r.out)
    else:
        assert_refused(r, t)


def test_zero_span_trace_keeps_old_plan(tmp_path):
    good = scenario(tmp_path, name="good.yaml")
    out = tmp_path / "out"
    assert run_main("solve", good, "--out", out, "--time-limit", "5").code == 0
    before = snapshot(out)
    t = csv_trace(tmp_path, ZERO_SPAN["one instant"])
    r = run_main("solve", trace_scenario(tmp_path, t), "--out", out, "--time-limit", "5")
    assert r.exc is None and r.code == 2, r.describe()
    assert snapshot(out) == before


BAD_TOKENS = {"NaN": "nan", "inf": "inf", "1e26": "1e26"}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_non_finite_token_counts_are_bad_rows(tmp_path, case):
    v = BAD_TOKENS[case]
    t = csv_trace(tmp_path, ["0,100,50", f"1,{v},50", "2,100,50", f"3,100,{v}", "4,120,40"])
    r = run_main("workload", "stats", t, "--json")
    assert r.exc is None and r.code == 0, r.describe()
    assert_finite_json(r.out)
    st = json.loads(r.out)
    assert st["requests"] == 3 and st["load"]["bad_rows"] == 2, st["load"]
    assert st["load"]["first_bad_lines"] == [3, 5]
    r = run_main("workload", "stats", t, "--on-bad", "error")
    assert_refused(r, t, fields=("3",))


def test_negative_seed_in_spec_stats(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(BASE["workload"]["synthetic"]))
    r = run_main("workload", "stats", spec, "--seed", "-1")
    assert_refused(r, fields=("--seed",))       # the bad value is the flag, not the file


# --- --out ---------------------------------------------------------------------------------

def _out_commands(tmp_path, target: Path):
    s = scenario(tmp_path)
    plan = plan_file(tmp_path)
    return {"solve": ["solve", s, "--out", target, "--time-limit", "5"],
            "simulate": ["simulate", plan, "--scenario", s, "--requests", "50", "--out", target],
            "emit": ["emit", plan, "--target", "vllm", "--out", target]}


@pytest.mark.parametrize("command", ["solve", "simulate", "emit"])
def test_out_pointing_at_a_file(tmp_path, command):
    target = tmp_path / "occupied"
    target.write_text("keep me\n")
    r = run_main(*_out_commands(tmp_path, target)[command])
    assert_refused(r, target, fields=("--out", "occupied"))
    assert target.read_text() == "keep me\n"


def test_solve_emit_bogus_leaves_out_untouched(tmp_path):
    out = tmp_path / "D"
    out.mkdir()
    (out / "plan.json").write_text("{\"old\": true}\n")
    (out / "report.md").write_text("old report\n")
    before = snapshot(out)
    r = run_main("solve", scenario(tmp_path), "--out", out, "--emit", "bogus", "--time-limit", "5")
    assert_refused(r, fields=("--emit", "bogus"))
    assert snapshot(out) == before


def test_emit_over_older_plan_leaves_no_stale_scripts(tmp_path):
    old = plan_file(tmp_path, name="old.json")
    def renamed(d):                               # the same plan, its pools on other GPUs
        d["pools"][0].update(gpu="A100-80G-PCIe", name="prefill-A100-80G-PCIe-tp1-wfp8-kvfp8",
                             weight_dtype="bf16")
        d["pools"][1]["kv_dtype"] = d["pools"][0]["kv_dtype"] = "bf16"
    new = plan_file(tmp_path, renamed, name="new.json")
    out, fresh = tmp_path / "D", tmp_path / "fresh"
    for plan, where in ((old, out), (new, out), (new, fresh)):
        r = run_main("emit", plan, "--target", "vllm", "--out", where)
        assert r.exc is None and r.code == 0, r.describe()
    assert sorted(snapshot(out)) == sorted(snapshot(fresh))


# --- plans ---------------------------------------------------------------------------------

def _pool0(**kw):
    return lambda d: d["pools"][0].update(**kw)


PLAN_CASES = {
    "negative replicas": (_pool0(replicas=-1), ("replicas",)),
    "tp 0": (_pool0(tp=0), ("tp",)),
    "negative batch": (lambda d: d["pools"][0]["routes"][0].update(batch=-4), ("batch",)),
    "unknown GPU": (_pool0(gpu="NoSuchGPU"), ("gpu",)),
    "replicas 1e7": (_pool0(replicas=1e7), ("replicas",)),
}


@pytest.mark.parametrize("command", ["emit", "simulate"])
@pytest.mark.parametrize("case", sorted(PLAN_CASES))
def test_bad_plan_refused(tmp_path, case, command):
    edit, fields = PLAN_CASES[case]
    plan = plan_file(tmp_path, edit)
    out = tmp_path / "D"
    args = (["emit", plan, "--target", "vllm", "--out", out] if command == "emit" else
            ["simulate", plan, "--scenario", scenario(tmp_path), "--requests", "50", "--out", out])
    r = run_main(*args, budget_s=GUARD_S)
    assert_refused(r, plan, fields=fields)
    assert r.seconds < FAST_S, r.describe()
    assert snapshot(out) is None


def test_unknown_plan_kv_link_names_the_plan(tmp_path):
    plan = plan_file(tmp_path, lambda d: d.update(kv_link="no-such-link"))
    r = run_main("simulate", plan, "--scenario", scenario(tmp_path), "--requests", "50")
    assert_refused(r, plan, fields=("kv_link",))


def test_inventory_link_error_names_the_file(tmp_path):
    inv = tmp_path / "inv.yaml"
    inv.write_text(yaml.safe_dump(INVENTORY | {"links": [{"a": "ib-a", "b": "nowhere",
                                                          "capacity_gbps": 100}]}))
    r = run_main("solve", scenario(tmp_path, inventory="inv.yaml"), "--time-limit", "5")
    assert_refused(r, inv, fields=("links",))


# --- names that reach generated scripts ----------------------------------------------------

def _stub_path(tmp_path: Path) -> str:
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for exe in ("vllm", "vllm-router"):
        (stubs / exe).write_text("#!/bin/sh\nexit 0\n")
        (stubs / exe).chmod(0o755)
    return f"{stubs}{os.pathsep}{os.environ['PATH']}"


def _run_scripts(tmp_path: Path, folder: Path) -> None:
    """Run every emitted script with stub `vllm`/`vllm-router`; each must finish cleanly
    (so every line of it ran, a payload line included)."""
    path = _stub_path(tmp_path)
    scripts = sorted(p for p in folder.rglob("*.sh"))
    assert scripts, f"no scripts under {folder}"
    work = tmp_path / "run"
    work.mkdir()
    for sh in scripts:
        r = subprocess.run(["bash", str(sh)], cwd=work, env={**os.environ, "PATH": path},
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, (sh, r.stderr[-2000:])


def _payload(marker: Path) -> str:
    return f"x\ntouch {marker}\n#"


def _check_injection(tmp_path: Path, r, out: Path, marker: Path, *files: Path) -> None:
    """Either refused (one line, exit 2) or emitted scripts that never run the payload."""
    if r.code == 2:
        assert_refused(r, *files)
    else:
        assert r.exc is None and r.code == 0, r.describe()
        _run_scripts(tmp_path, out)
    assert not marker.exists(), "a value from the input ran as a shell command"


@pytest.mark.parametrize("where", ["pool name", "plan model"])
def test_newline_in_plan_never_runs(tmp_path, where):
    marker = tmp_path / "pwned"
    if where == "pool name":
        def edit(d):
            old = d["pools"][0]["name"]
            d["pools"][0]["name"] = old + _payload(marker)
    else:
        def edit(d):
            d["model"] = d["model"] + _payload(marker)
    plan = plan_file(tmp_path, edit)
    out = tmp_path / "D"
    r = run_cli("emit", plan, "--target", "vllm", "--out", out)
    _check_injection(tmp_path, r, out, marker, plan)


def test_newline_in_scenario_name_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    s = scenario(tmp_path, lambda d: d.update(name="tiny" + _payload(marker)))
    out = tmp_path / "D"
    r = run_cli("solve", s, "--out", out, "--emit", "vllm", "--time-limit", "5")
    _check_injection(tmp_path, r, out / "vllm", marker, s)


def test_newline_in_inventory_node_id_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    inv = copy.deepcopy(INVENTORY)
    for n in inv["nodes"]:
        n["id"] += _payload(marker)
    (tmp_path / "inv.yaml").write_text(yaml.safe_dump(inv))
    s = scenario(tmp_path, inventory="inv.yaml")
    out = tmp_path / "D"
    r = run_cli("solve", s, "--out", out, "--emit", "vllm", "--time-limit", "5")
    _check_injection(tmp_path, r, out / "vllm", marker, tmp_path / "inv.yaml", s)


def _written_outside(tmp_path: Path, before: dict, out: Path) -> list[str]:
    inside = str(out.relative_to(tmp_path))
    parents = {str(p.relative_to(tmp_path)) for p in out.parents if tmp_path in p.parents}
    after = snapshot(tmp_path)
    return sorted(k for k in after if (k not in before or after[k] != before[k])
                  and not (k == inside or k.startswith(inside + "/")) and k not in parents)


@pytest.mark.parametrize("bad_id", ["../../../../escaped", "a/../../../../../b"])
def test_node_id_path_stays_under_out(tmp_path, bad_id):
    inv = copy.deepcopy(INVENTORY)
    for n in inv["nodes"]:
        n["id"] = bad_id + ("" if n["gpu"] == "L40S" else "-h")
    (tmp_path / "inv.yaml").write_text(yaml.safe_dump(inv))
    s = scenario(tmp_path, inventory="inv.yaml")
    out = tmp_path / "w" / "x" / "D"
    before = snapshot(tmp_path)
    r = run_main("solve", s, "--out", out, "--emit", "vllm", "--time-limit", "5")
    assert r.exc is None and r.code in (0, 2), r.describe()
    if r.code == 2:
        assert_refused(r, tmp_path / "inv.yaml", s)
    assert not _written_outside(tmp_path, before, out), "written outside --out"
    assert not temp_files(snapshot(out))


@pytest.mark.parametrize("target", ["vllm", "k8s", "dynamo", "llm-d"])
def test_pool_name_path_stays_under_out(tmp_path, target):
    plan = plan_file(tmp_path, _pool0(name="../../../escaped-pool"))
    out = tmp_path / "w" / "x" / "D"
    before = snapshot(tmp_path)
    r = run_main("emit", plan, "--target", target, "--out", out)
    assert r.exc is None and r.code in (0, 2), r.describe()
    if r.code == 2:
        assert_refused(r, plan)
    assert not _written_outside(tmp_path, before, out), "written outside --out"
