"""`hetplan workload stats` and `hetplan workload sample` through typer's CliRunner."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from hetplan.cli import app
from hetplan.cli.workload import parse_column_map
from hetplan.errors import InputError
from hetplan.io import workloads_dir
from hetplan.workload import load_trace

runner = CliRunner()
SPEC = workloads_dir() / "specs" / "splitwise-conversation.yaml"


def invoke(*args: str):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, (r.output, r.exception)
    return r


def test_sample_then_stats_round_trip(tmp_path):
    out = tmp_path / "conv.csv"
    r = invoke("workload", "sample", "--spec", SPEC, "--out", out, "--seed", "5")
    n = load_trace(out).num_requests
    assert f"wrote {n:,} requests" in r.output
    st = json.loads(invoke("workload", "stats", out, "--classes", "3", "--json").output)
    assert st["requests"] == n and st["load"]["format"] == "generic"
    assert sum(c["count"] for c in st["classes"]) == n
    assert st["input_tokens"]["p50"] <= st["input_tokens"]["p90"] <= st["input_tokens"]["p99"]
    r = st["rate_rps"]       # a request sees at least the rate of a random moment, on average
    assert r["r50"] <= r["r90"] <= r["r95"] and r["r90"] >= r["p50"]
    spec_stats = json.loads(invoke("workload", "stats", SPEC, "--seed", "5", "--json").output)
    assert spec_stats["requests"] == n                 # the spec and its sample agree
    text = invoke("workload", "stats", out).output
    assert "classes (log bins, 4 x 4)" in text and "requests" in text


def test_sample_is_deterministic_and_writes_jsonl(tmp_path):
    agentic = workloads_dir() / "specs" / "agentic.yaml"
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    invoke("workload", "sample", "--spec", agentic, "--out", a)
    invoke("workload", "sample", "--spec", agentic, "--out", b)
    assert a.read_bytes() == b.read_bytes()
    st = json.loads(invoke("workload", "stats", a, "--json").output)
    assert st["sessions"]["count"] > 0 and 0 < st["prefix_tokens"]["share_of_input"] < 1


def test_stats_generic_file_with_column_map_and_bad_rows(write):
    p = write("t.csv", "ms,p,c\n0,10,5\n500,-3,5\n1500,30,7\n")
    st = json.loads(invoke("workload", "stats", p, "--column-map", "timestamp=ms",
                           "--column-map", "input_tokens=p", "--column-map",
                           "output_tokens=c", "--time-unit", "ms", "--json").output)
    assert st["requests"] == 2 and st["duration_s"] == 1.5
    assert st["load"]["bad_rows"] == 1 and st["load"]["first_bad_lines"] == [3]
    text = invoke("workload", "stats", p, "--column-map", "timestamp=ms", "--column-map",
                  "input_tokens=p", "--column-map", "output_tokens=c", "--time-unit",
                  "ms").output
    assert "bad lines: 3" in text and "negative p" in text


def test_bad_cli_input_is_an_input_error(write):
    with pytest.raises(InputError, match="expected KEY=COLUMN"):
        parse_column_map(["input_tokens"])
    r = runner.invoke(app, ["workload", "stats", str(write("x.csv", "a,b\n1,2\n"))])
    assert isinstance(r.exception, InputError) and "unknown trace format" in str(r.exception)
