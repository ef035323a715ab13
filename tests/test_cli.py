"""CLI: commands print what they should; bad input is one line on stderr with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hetplan.cli", *args], capture_output=True,
                          text=True, timeout=120)


def test_catalog_list_shows_all_gpus():
    r = run("catalog", "list", "--prices", "2026-04-17-seed")
    assert r.returncode == 0, r.stderr
    assert "H100-SXM" in r.stdout and "Gaudi3" in r.stdout and "2.57" in r.stdout


def test_catalog_show_json_has_sources():
    r = run("catalog", "show", "L40S", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["memory_gb"] == 48 and d["references"]["memory_gb"]


def test_model_show_json():
    r = run("model", "show", "llama-3.1-70b", "--json")
    d = json.loads(r.stdout)
    assert d["kv_bytes_per_token"]["bf16"] == 327_680
    assert d["total_params"] == pytest.approx(70.55e9, rel=0.01)


def test_scenario_check_default():
    r = run("scenario", "check", "workloads/default.yaml")
    assert r.returncode == 0, r.stderr
    assert "OK" in r.stdout


@pytest.mark.parametrize("args, needle", [
    (("catalog", "show", "H100-SXN"), "unknown GPU 'H100-SXN'"),
    (("model", "show", "nowhere/config.json"), "file not found"),
    (("scenario", "check", "missing.yaml"), "missing.yaml: file not found"),
])
def test_bad_input_is_one_line_exit_2(args, needle):
    r = run(*args)
    assert r.returncode == 2
    assert needle in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_yaml_syntax_error_one_line(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("model: [x\nslo: 1\n")
    r = run("scenario", "check", str(p))
    assert r.returncode == 2 and "YAML syntax error at line" in r.stderr
    assert "Traceback" not in r.stderr
