"""Hostile inputs end in one line on stderr naming the file and field, exit 2 (3 for an
infeasible scenario, 70 for an internal error), no traceback, and nothing written under --out.

Most cases call `hetplan.cli.main` in-process (fast); a few run the real entry point in a
subprocess to check the exit code and stderr a user sees.
"""

from __future__ import annotations

import copy
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hetplan.bounds import MAX_SYNTHETIC_REQUESTS, MAX_TOKENS, MAX_YAML_BYTES
from hetplan.cli import main
from hetplan.errors import InputError

ROOT = Path(__file__).resolve().parent.parent
BASE = yaml.safe_load((ROOT / "workloads" / "default.yaml").read_text(encoding="utf-8"))
TRACE_HEADER = "arrival_s,input_tokens,output_tokens\n"


def cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    code = exc.value.code
    out, err = capsys.readouterr()
    return (0 if code is None else code), out, err


def one_line(err: str, *needles: str) -> None:
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], (n, lines[0])


def scenario(tmp_path: Path, name: str = "s", edit=None, text: str | None = None) -> Path:
    p = tmp_path / f"{name}.yaml"
    if text is None:
        raw = copy.deepcopy(BASE)
        raw["name"] = name
        if edit:
            edit(raw)
        text = yaml.safe_dump(raw, sort_keys=False)
    p.write_text(text, encoding="utf-8")
    return p


def synthetic(**kw):
    def edit(raw):
        for k, v in kw.items():
            if k in ("rate_rps",):
                raw["workload"]["synthetic"]["arrival"][k] = v
            else:
                raw["workload"]["synthetic"][k] = v
    return edit


def set_at(path: str, value):
    def edit(raw):
        *head, last = path.split(".")
        d = raw
        for k in head:
            d = d.setdefault(k, {})
        d[last] = value
    return edit


def trace_scenario(tmp_path: Path, rows: str) -> Path:
    (tmp_path / "t.csv").write_text(TRACE_HEADER + rows, encoding="utf-8")
    return scenario(tmp_path, "tr", edit=lambda r: r.update(workload={"trace": "t.csv"}))


# ---- scenario numbers -------------------------------------------------------------------

@pytest.mark.parametrize("edit,field", [
    (synthetic(rate_rps=float("inf")), "workload.synthetic.arrival.rate_rps"),
    (synthetic(rate_rps=1e7), "workload.synthetic.arrival.rate_rps"),
    (synthetic(duration_s=1e12), "workload.synthetic.duration_s"),
    (synthetic(seed=-1), "workload.synthetic.seed"),
    (set_at("constraints.budget_usd_per_hour", float("inf")),
     "constraints.budget_usd_per_hour"),
    (set_at("slo.ttft_ms", float("inf")), "slo.ttft_ms"),
    (set_at("slo.tpot_ms", float("nan")), "slo.tpot_ms"),
    (set_at("catalog.gpus", []), "catalog.gpus"),
    (set_at("catalog.availability", {"H100-SXM": 10**12}), "catalog.availability.H100-SXM"),
    (set_at("constraints.max_tp", 10**9), "constraints.max_tp"),
    (set_at("workload.classes", {"n_input": 10**6}), "workload.classes.n_input"),
])
def test_scenario_numbers_out_of_bounds(tmp_path, capsys, edit, field):
    p = scenario(tmp_path, edit=edit)
    code, _, err = cli(capsys, "scenario", "check", str(p))
    assert code == 2
    one_line(err, str(p), field)


def test_too_many_synthetic_requests_says_how_to_lower(tmp_path, capsys):
    p = scenario(tmp_path, edit=synthetic(rate_rps=1e5, duration_s=1e4))
    code, _, err = cli(capsys, "scenario", "check", str(p))
    assert code == 2
    one_line(err, str(p), "workload.synthetic", f"{MAX_SYNTHETIC_REQUESTS:,}",
             "lower arrival.rate_rps or duration_s")


def test_synthetic_workload_with_no_request(tmp_path, capsys):
    p = scenario(tmp_path, edit=synthetic(rate_rps=0.001, duration_s=1.0))
    out = tmp_path / "out"
    code, _, err = cli(capsys, "solve", str(p), "--out", str(out))
    assert code == 2
    one_line(err, str(p), "workload.synthetic", "at least 2")
    assert not out.exists()


def test_simulate_duration_cannot_bypass_the_cap(tmp_path, capsys):
    from hetplan.scenario import load_scenario
    from hetplan.simulate.workload import scenario_trace

    s = load_scenario(ROOT / "workloads" / "default.yaml")
    with pytest.raises(InputError, match="lower arrival.rate_rps or duration_s"):
        scenario_trace(s, duration_s=1e8)        # model_copy skips validation: caught anyway


# ---- file formats -----------------------------------------------------------------------

def test_deeply_nested_yaml(tmp_path, capsys):
    p = scenario(tmp_path, text="name: x\nmodel: " + "[" * 100_000 + "]" * 100_000 + "\n")
    code, _, err = cli(capsys, "scenario", "check", str(p))
    assert code == 2
    one_line(err, str(p), "nested deeper than")


def test_alias_bomb_yaml(tmp_path, capsys):
    lines = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for prev, cur in zip("abcdef", "bcdefg"):
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    p = scenario(tmp_path, text="\n".join(lines) + "\n")
    code, _, err = cli(capsys, "scenario", "check", str(p))
    assert code == 2
    one_line(err, str(p), "aliases expanded")


def test_oversized_yaml_is_refused_quickly(tmp_path, capsys):
    p = tmp_path / "big.yaml"
    p.write_text("gpus:\n" + "  - H100-SXM\n" * (MAX_YAML_BYTES // 12 + 10), encoding="utf-8")
    code, _, err = cli(capsys, "scenario", "check", str(p))
    assert code == 2
    one_line(err, str(p), "more than the limit")


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_endless_device_is_read_bounded(capsys):
    code, _, err = cli(capsys, "scenario", "check", "/dev/zero")
    assert code == 2
    one_line(err, "/dev/zero", "more than the limit")


def test_duplicate_top_level_key(tmp_path, capsys):
    text = yaml.safe_dump(BASE, sort_keys=False) + "model: llama-3.1-8b\n"
    p = scenario(tmp_path, text=text)
    code, _, err = cli(capsys, "scenario", "check", str(p))
    assert code == 2
    one_line(err, str(p), "duplicate key 'model'")


@pytest.mark.parametrize("data,needle", [
    ("name: café\n".encode("latin-1"), "not UTF-8"),
    (b"\x00\x01\x02\xff binary", "not UTF-8"),
    (b"name: a\x00b\n", "binary data"),
])
def test_undecodable_scenario(tmp_path, capsys, data, needle):
    p = tmp_path / "bad.yaml"
    p.write_bytes(data)
    code, _, err = cli(capsys, "scenario", "check", str(p))
    assert code == 2
    one_line(err, str(p), needle)


def test_gz_that_is_not_gzip(tmp_path, capsys):
    p = tmp_path / "t.csv.gz"
    p.write_bytes(b"arrival_s,input_tokens,output_tokens\n0,1,1\n")
    code, _, err = cli(capsys, "workload", "stats", str(p))
    assert code == 2
    one_line(err, str(p), "cannot read file")


def test_truncated_gzip(tmp_path, capsys):
    data = gzip.compress((TRACE_HEADER + "".join(f"{i},100,10\n" for i in range(5000)))
                         .encode())
    p = tmp_path / "t.csv.gz"
    p.write_bytes(data[: len(data) // 2])
    code, _, err = cli(capsys, "workload", "stats", str(p))
    assert code == 2
    one_line(err, str(p))


def test_model_config_sizes(tmp_path, capsys):
    cfg = json.loads((ROOT / "catalogs" / "models" / "llama-3.1-8b.json").read_text())
    for key, value, text in [("num_hidden_layers", 1e12, None),
                             ("hidden_size", None, '{"hidden_size": NaN}')]:
        d = tmp_path / key
        d.mkdir()
        (d / "config.json").write_text(text or json.dumps({**cfg, key: value}))
        p = scenario(tmp_path, name=f"m{key}", edit=set_at("model", str(d / "config.json")))
        code, _, err = cli(capsys, "scenario", "check", str(p))
        assert code == 2
        one_line(err, str(d / "config.json"), key if text is None else "NaN")


# ---- traces ------------------------------------------------------------------------------

@pytest.mark.parametrize("rows,what", [
    ("0,100,10\n", "1 request"),
    ("5,100,10\n5,200,20\n5,100,30\n", "all 3 arrivals at one instant"),
])
def test_trace_without_a_rate_writes_nothing(tmp_path, capsys, rows, what):
    p = trace_scenario(tmp_path, rows)
    out = tmp_path / "out"
    out.mkdir()
    (out / "plan.json").write_text("old plan")
    code, _, err = cli(capsys, "solve", str(p), "--out", str(out))
    assert code == 2
    one_line(err, str(tmp_path / "t.csv"), "workload.trace", what)
    assert (out / "plan.json").read_text() == "old plan"
    assert sorted(x.name for x in out.iterdir()) == ["plan.json"]


def test_one_row_and_one_instant_traces_have_stats(tmp_path, capsys):
    for rows in ("0,100,10\n", "5,100,10\n5,200,20\n"):
        (tmp_path / "t.csv").write_text(TRACE_HEADER + rows)
        code, out, err = cli(capsys, "workload", "stats", str(tmp_path / "t.csv"), "--json")
        assert code == 0, err
        st = json.loads(out)
        assert st["duration_s"] == 0.0 and st["rate_rps"]["mean"] == 0.0


def test_nan_inf_overflow_and_huge_times_are_bad_rows(tmp_path, capsys):
    rows = ("0,100,10\n1,nan,20\n2,inf,30\n3,1e26,5\n1e300,10,10\n4,100,-inf\n"
            f"5,{MAX_TOKENS + 1},5\n6,100,10\n")
    (tmp_path / "t.csv").write_text(TRACE_HEADER + rows)
    code, out, err = cli(capsys, "workload", "stats", str(tmp_path / "t.csv"), "--json")
    assert code == 0, err
    load = json.loads(out)["load"]
    assert load["rows_read"] == 8 and load["rows_kept"] == 2
    assert load["bad_by_reason"] == {
        "missing input_tokens": 1,          # pandas reads "nan" as a missing value
        f"input_tokens above {MAX_TOKENS:,}": 3,
        "arrival_s beyond 1e+11 s": 1,
        "negative output_tokens": 1,
    }
    assert load["first_bad_lines"] == [3, 4, 5, 6, 7]
    assert json.loads(out)["input_tokens"]["max"] == 100.0


def test_jsonl_nan_and_infinity_tokens_are_bad_rows(tmp_path, capsys):
    p = tmp_path / "t.jsonl"
    p.write_text('{"arrival_s": 0, "input_tokens": 5, "output_tokens": 5}\n'
                 '{"arrival_s": 1, "input_tokens": NaN, "output_tokens": 5}\n'
                 '{"arrival_s": 2, "input_tokens": Infinity, "output_tokens": 5}\n'
                 '{"arrival_s": 3, "input_tokens": 7, "output_tokens": 5}\n')
    code, out, err = cli(capsys, "workload", "stats", str(p), "--json")
    assert code == 0, err
    assert json.loads(out)["load"]["bad_rows"] == 2


def test_trace_span_beyond_limit(tmp_path, capsys):
    (tmp_path / "t.csv").write_text(TRACE_HEADER + "0,100,10\n9e10,100,10\n")
    code, _, err = cli(capsys, "workload", "stats", str(tmp_path / "t.csv"))
    assert code == 2
    one_line(err, str(tmp_path / "t.csv"), "arrival_s", "check the time unit")


def test_tiny_window_over_long_trace(tmp_path, capsys):
    (tmp_path / "t.csv").write_text(TRACE_HEADER + "0,100,10\n1e8,100,10\n")
    code, _, err = cli(capsys, "workload", "stats", str(tmp_path / "t.csv"), "--window",
                       "0.001")
    assert code == 2
    one_line(err, "window", "use a longer window")


def test_timestamps_outside_pandas_range_are_bad_rows(tmp_path, capsys):
    p = tmp_path / "azure.csv"
    p.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n-1,5,5\n"
                 "2023-11-16 18:15:46.6805900,5,5\n2023-11-16 18:15:47.0,6,6\n")
    code, out, err = cli(capsys, "workload", "stats", str(p), "--json")
    assert code == 0, err
    load = json.loads(out)["load"]
    assert load["bad_by_reason"] == {"unparsable timestamp in TIMESTAMP": 1}
    assert load["rows_kept"] == 2


# ---- names -------------------------------------------------------------------------------

@pytest.mark.parametrize("edit,field", [
    (set_at("name", "a\nb"), "name"),
    (set_at("name", "../../etc/x"), "name"),
    (set_at("model", "llama\r-3.1-70b"), "model"),
    (set_at("catalog.gpus", ["H100-SXM\x00"]), "catalog.gpus.0"),
    (set_at("constraints.kv_link", "ib\x85"), "constraints.kv_link"),
])
def test_control_characters_and_paths_in_scenario_names(tmp_path, capsys, edit, field):
    p = scenario(tmp_path, edit=edit)
    code, _, err = cli(capsys, "scenario", "check", str(p))
    assert code == 2
    one_line(err, str(p), field)


def _inventory(tmp_path: Path, **node) -> Path:
    base = {"id": "n1", "gpu": "H100-SXM", "gpus": 8, "rack": "r1", "fabric": "f",
            "nic_gbps": 400}
    p = tmp_path / "inv.yaml"
    p.write_text(yaml.safe_dump({"name": "lab", "nodes": [{**base, **node}]}))
    return p


@pytest.mark.parametrize("node,field", [
    ({"id": "../evil"}, "nodes.0.id"),
    ({"id": "-rf"}, "nodes.0.id"),
    ({"id": "a/b"}, "nodes.0.id"),
    ({"id": "node\n1"}, "nodes.0.id"),
    ({"rack": "r\x1b[31m"}, "nodes.0.rack"),
    ({"fabric": "f\x7f"}, "nodes.0.fabric"),
    ({"address": "10.0.0.1; rm -rf /"}, "nodes.0.address"),
    ({"address": "-oProxyCommand=x"}, "nodes.0.address"),
    ({"gpus": 10**9}, "nodes.0.gpus"),
    ({"nic_gbps": float("inf")}, "nodes.0.nic_gbps"),
])
def test_inventory_ids_and_numbers(tmp_path, capsys, node, field):
    inv = _inventory(tmp_path, **node)
    p = scenario(tmp_path, edit=set_at("inventory", str(inv)))
    code, _, err = cli(capsys, "scenario", "check", str(p))
    assert code == 2
    one_line(err, str(inv), field)


def test_catalog_names_and_prices(tmp_path):
    from hetplan.catalog import load_gpus, load_price_sheet

    gpus_yaml = (ROOT / "catalogs" / "gpus.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "gpus.yaml"
    bad.write_text(gpus_yaml.replace("  H100-SXM:", '  "H100\\nSXM":', 1), encoding="utf-8")
    with pytest.raises(InputError, match="gpus.H100\nSXM.name: .*control character"):
        load_gpus(bad)
    bad.write_text(gpus_yaml.replace("  H100-SXM:", "  ../H100:", 1), encoding="utf-8")
    with pytest.raises(InputError, match=r"gpus\.\.\./H100\.name"):
        load_gpus(bad)
    gpus, _ = load_gpus(ROOT / "catalogs" / "gpus.yaml")
    sheet = tmp_path / "p.yaml"
    sheet.write_text(yaml.safe_dump({"as_of": "2026-01-01", "references": {"r": "x"},
                                     "offers": [{"gpu": "H100-SXM", "provider": "p",
                                                 "price_usd_per_hour": float("inf"),
                                                 "source": "r"}]}))
    with pytest.raises(InputError, match=r"p\.yaml: offers\.0\.price_usd_per_hour"):
        load_price_sheet(sheet, gpus)


# ---- the CLI itself ------------------------------------------------------------------------

def test_out_that_is_a_file(tmp_path, capsys):
    f = tmp_path / "f"
    f.write_text("keep")
    code, _, err = cli(capsys, "solve", str(ROOT / "workloads" / "default.yaml"), "--out", str(f))
    assert code == 2
    one_line(err, str(f), "--out", "not a directory")
    assert f.read_text() == "keep"


def test_out_under_a_file(tmp_path, capsys):
    f = tmp_path / "f"
    f.write_text("keep")
    code, _, err = cli(capsys, "workload", "sample", "--spec",
                       str(ROOT / "workloads" / "default.yaml"), "--out", str(f / "t.csv"))
    assert code == 2
    one_line(err, "--out", "not a directory")


def test_unknown_kv_link_names_the_scenario(tmp_path, capsys):
    p = scenario(tmp_path, edit=set_at("constraints.kv_link", "bogus"))
    code, _, err = cli(capsys, "scenario", "check", str(p))
    assert code == 2
    one_line(err, str(p), "constraints.kv_link: unknown link 'bogus'")


@pytest.mark.parametrize("args,field", [(["--duration", "nan"], "--duration"),
                                        (["--duration", "inf"], "--duration"),
                                        (["--requests", "0"], "--requests"),
                                        (["--seed", "-1"], "--seed")])
def test_simulate_options(tmp_path, capsys, args, field):
    code, _, err = cli(capsys, "simulate", str(ROOT / "deploy" / "default" / "plan.json"),
                       "--out", str(tmp_path / "o"), *args)
    assert code == 2
    one_line(err, field)
    assert not (tmp_path / "o").exists()


def test_emit_target_checked_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "d"
    out.mkdir()
    (out / "plan.json").write_text("old plan")
    code, _, err = cli(capsys, "solve", str(ROOT / "workloads" / "default.yaml"), "--out",
                       str(out), "--emit", "bogus")
    assert code == 2
    one_line(err, "--emit", "bogus")
    assert (out / "plan.json").read_text() == "old plan"


@pytest.mark.parametrize("args,field", [
    (["--solver", "nope"], "--solver"),
    (["--time-limit", "inf"], "--time-limit"),
    (["--time-limit", "-1"], "--time-limit"),
])
def test_solver_options_checked_first(tmp_path, capsys, args, field):
    code, _, err = cli(capsys, "solve", str(ROOT / "workloads" / "default.yaml"), *args)
    assert code == 2
    one_line(err, field)


def test_negative_seed_option(tmp_path, capsys):
    code, _, err = cli(capsys, "workload", "sample", "--spec",
                       str(ROOT / "workloads" / "default.yaml"), "--out",
                       str(tmp_path / "t.csv"), "--seed", "-5")
    assert code == 2
    one_line(err, "--seed")
    assert not (tmp_path / "t.csv").exists()


def test_internal_error_is_one_line_exit_70(monkeypatch, capsys):
    import hetplan.catalog

    def boom(*a, **k):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(hetplan.catalog, "load_catalog", boom)
    code, _, err = cli(capsys, "scenario", "check", str(ROOT / "workloads" / "default.yaml"))
    assert code == 70
    one_line(err, "internal error: RuntimeError: boom second line", "rerun with --debug")
    code, _, err = cli(capsys, "scenario", "check", str(ROOT / "workloads" / "default.yaml"),
                       "--debug")
    assert code == 70
    assert "Traceback" in err and "boom" in err and err.strip().endswith("--debug for the "
                                                                          "traceback)")


def test_flags_show_as_flags_in_help(capsys):
    for cmd in (["solve"], ["simulate"], ["workload", "stats"], ["emit"], ["catalog", "list"]):
        code, out, _ = cli(capsys, *cmd, "--help")
        assert code == 0
        assert "<bool>" not in out
        assert "--json" in out or "--check" in out
    code, out, _ = cli(capsys, "solve", "--help")
    flag_lines = [ln for ln in out.splitlines() if ln.strip().startswith(("--json", "--plots"))]
    assert flag_lines and all("<" not in ln for ln in flag_lines)


# ---- the real entry point ------------------------------------------------------------------

def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hetplan.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


def test_subprocess_exit_codes_and_one_line(tmp_path):
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: café\n".encode("latin-1"))
    deep = tmp_path / "deep.yaml"
    deep.write_text("a: " + "[" * 50_000 + "]" * 50_000 + "\n")
    f = tmp_path / "file"
    f.write_text("x")
    for args, needle in [(["scenario", "check", str(latin)], "not UTF-8"),
                         (["scenario", "check", str(deep)], "nested deeper"),
                         (["frontier", str(ROOT / "workloads" / "default.yaml"), "--out",
                           str(f)], "not a directory")]:
        r = run(*args, cwd=tmp_path)
        assert r.returncode == 2, r.stderr
        one_line(r.stderr, "error: ", needle)
    assert f.read_text() == "x"
