"""More hostile inputs (the red-team pass after issue 14): special files, odd trace lines and
column maps, calibration inputs, model configs, scenario lists and click usage errors. Each
ends in exit 2 (3 when infeasible) and one stderr line naming the file or flag and field.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cli_harness import TINY_SCENARIO
from test_hardening import TRACE_HEADER, cli, one_line

ROOT = Path(__file__).resolve().parent.parent


def trace(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# ---- special files: never block on open, never read a device without end -----------------

@pytest.fixture
def fifo(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    p = tmp_path / "pipe.csv"
    os.mkfifo(p)
    return p


@pytest.mark.parametrize("args", [("scenario", "check"), ("workload", "stats"),
                                  ("workload", "sample", "--out", "x.csv", "--spec")])
def test_fifo_without_a_writer_does_not_hang(tmp_path, capsys, fifo, args):
    argv = [a.replace("x.csv", str(tmp_path / "x.csv")) for a in args]
    code, _, err = cli(capsys, *argv, str(fifo))
    assert code == 2
    one_line(err, str(fifo))
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_device_as_trace_is_refused(capsys):
    code, _, err = cli(capsys, "workload", "stats", "/dev/zero")
    assert code == 2
    one_line(err, "/dev/zero", "character device")


def test_directory_as_trace(tmp_path, capsys):
    code, _, err = cli(capsys, "workload", "stats", str(tmp_path))
    assert code == 2
    one_line(err, str(tmp_path), "is a directory")


# ---- trace lines and column maps ----------------------------------------------------------

@pytest.mark.parametrize("line", ['{"arrival_s": 0, "input_tokens": ' + "9" * 5000 +
                                  ', "output_tokens": 5}', "[" * 100_000 + "]" * 100_000])
@pytest.mark.parametrize("first", [True, False])
def test_jsonl_line_json_cannot_parse(tmp_path, capsys, line, first):
    good = "".join(f'{{"arrival_s": {i}, "input_tokens": 5, "output_tokens": 5}}\n'
                   for i in range(3))
    p = trace(tmp_path, "t.jsonl", line + "\n" + good if first else good + line + "\n")
    code, out, err = cli(capsys, "workload", "stats", str(p), "--json")
    if first:                           # the header line: the format cannot be told
        assert code == 2
        one_line(err, str(p), "first line is not a JSON object")
    else:                               # a bad row, counted and skipped
        assert code == 0, err
        assert json.loads(out)["load"]["bad_rows"] == 1


def test_one_column_mapped_twice(tmp_path, capsys):
    p = trace(tmp_path, "t.csv", "ts,in,out\n0,5,5\n1,6,6\n")
    code, _, err = cli(capsys, "workload", "stats", str(p), "--column-map", "arrival_s=ts",
                       "--column-map", "input_tokens=ts", "--column-map", "output_tokens=out")
    assert code == 2
    one_line(err, str(p), "column_map", "'ts'")


def test_column_map_key_given_twice(tmp_path, capsys):
    p = trace(tmp_path, "t.csv", "ts,in,out\n0,5,5\n")
    code, _, err = cli(capsys, "workload", "stats", str(p), "--column-map", "arrival_s=ts",
                       "--column-map", "arrival_s=in")
    assert code == 2
    one_line(err, "--column-map", "arrival_s given twice")


def test_on_bad_names_its_field(tmp_path, capsys):
    p = trace(tmp_path, "t.csv", TRACE_HEADER + "0,5,5\n")
    code, _, err = cli(capsys, "workload", "stats", str(p), "--on-bad", "explode")
    assert code == 2
    one_line(err, "on_bad", "'explode'")


# ---- scenario lists, budgets, inventories -------------------------------------------------

def tiny(tmp_path: Path, name: str = "s", **edits) -> Path:
    import copy

    import yaml
    raw = copy.deepcopy(TINY_SCENARIO)
    for key, value in edits.items():
        section, field = key.split("__")
        raw.setdefault(section, {})[field] = value
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return p


@pytest.mark.parametrize("key,value,field", [
    ("constraints__roles", ["colocated", "colocated"], "constraints.roles"),
    ("constraints__weight_dtypes", ["bf16", "bf16"], "constraints.weight_dtypes"),
    ("constraints__kv_dtypes", ["fp8", "fp8"], "constraints.kv_dtypes"),
    ("catalog__gpus", ["L40S", "L40S"], "catalog.gpus"),
])
def test_item_listed_twice(tmp_path, capsys, key, value, field):
    p = tiny(tmp_path, **{key: value})
    code, _, err = cli(capsys, "solve", str(p), "--out", str(tmp_path / "out"))
    assert code == 2
    one_line(err, str(p), field, "listed twice")
    assert not (tmp_path / "out").exists()


def test_budget_that_buys_nothing_is_infeasible(tmp_path, capsys):
    p = tiny(tmp_path, constraints__budget_usd_per_hour=0.01)
    p.write_text(p.read_text().replace("objective: min_cost", "objective: max_goodput"))
    code, _, err = cli(capsys, "solve", str(p), "--out", str(tmp_path / "out"))
    assert code == 3, err
    one_line(err, "infeasible: ", "budget_usd_per_hour", "buys no replica")
    assert not (tmp_path / "out").exists()


def test_inventory_csv_row_with_surplus_values(tmp_path, capsys):
    csv_path = tmp_path / "nodes.csv"
    csv_path.write_text("id,gpu,gpus,rack,fabric,nic_gbps\nn1,L40S,8,r1,f1,400,1,2\n")
    inv = tmp_path / "inv.yaml"
    inv.write_text("nodes_csv: nodes.csv\n")
    p = tiny(tmp_path)
    p.write_text(p.read_text() + f"inventory: {inv}\n")
    code, _, err = cli(capsys, "solve", str(p), "--out", str(tmp_path / "out"))
    assert code == 2
    one_line(err, str(csv_path), "line 2", "8 values")


# ---- calibrate ----------------------------------------------------------------------------

def test_calibrate_run_checks_inputs_before_torch(tmp_path, capsys):
    code, _, err = cli(capsys, "calibrate", "run", "--gpu", "Z9", "--device", "cpu",
                       "--out", str(tmp_path / "c.yaml"))
    assert code == 2
    one_line(err, "unknown GPU 'Z9'")
    code, _, err = cli(capsys, "calibrate", "run", "--gpu", "H100-SXM", "--tp", "0")
    assert code == 2
    one_line(err, "--tp")
    code, _, err = cli(capsys, "calibrate", "run", "--gpu", "H100-SXM", "--out", str(tmp_path))
    assert code == 2
    one_line(err, str(tmp_path), "--out", "is a directory")


def test_calibrate_run_without_torch_is_an_input_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "torch", None)   # import torch fails
    code, _, err = cli(capsys, "calibrate", "run", "--gpu", "H100-SXM", "--device", "cpu",
                       "--quick", "--out", str(tmp_path / "c.yaml"))
    assert code == 2
    one_line(err, "PyTorch is needed")
    assert not (tmp_path / "c.yaml").exists()


def test_import_aiconfigurator_wheel_that_is_not_a_zip(tmp_path, capsys):
    whl = tmp_path / "aiconfigurator_core-0.1-py3-none-any.whl"
    whl.write_bytes(b"PK\x03\x04 not really")
    code, _, err = cli(capsys, "calibrate", "import-aiconfigurator", str(whl),
                       "--out-dir", str(tmp_path / "cal"))
    assert code == 2
    one_line(err, str(whl), "not a wheel")
    assert not (tmp_path / "cal").exists()


@pytest.mark.parametrize("command", ["fit-overhead", "import-bench"])
def test_calibration_dir_that_is_a_file(tmp_path, capsys, command):
    bench = tmp_path / "b.json"
    bench.write_text("{}")
    code, _, err = cli(capsys, "calibrate", command, str(bench), "--calibration-dir",
                       str(bench))
    assert code == 2
    one_line(err, str(bench), "--calibration-dir", "not a directory")


@pytest.mark.parametrize("name,text,needle", [
    ("strs.json", json.dumps({"hetplan_tp": 1, "completed": "y", "total_input_tokens": 1,
                              "total_output_tokens": 1, "median_tpot_ms": 1}), "bad value"),
    ("tp.json", json.dumps({"hetplan_tp": "two"}), "hetplan_tp"),
    ("empty.csv", "", "no measurement rows"),
    ("hello.txt", "hello\n", "no measurement rows"),
])
def test_fit_overhead_bad_tables(tmp_path, capsys, name, text, needle):
    p = tmp_path / name
    p.write_text(text)
    code, _, err = cli(capsys, "calibrate", "fit-overhead", str(p), "--gpu", "H100-SXM",
                       "--model", "llama-3.1-8b", "--calibration-dir", str(tmp_path / "cal"))
    assert code == 2
    one_line(err, str(p), needle)
    assert not (tmp_path / "cal").exists()


def test_fit_overhead_table_that_is_a_directory(tmp_path, capsys):
    code, _, err = cli(capsys, "calibrate", "fit-overhead", str(tmp_path),
                       "--calibration-dir", str(tmp_path / "cal"))
    assert code == 2
    one_line(err, str(tmp_path), "is a directory")


# ---- a hostile local config.json ----------------------------------------------------------

LLAMA_8B = json.loads((ROOT / "catalogs" / "models" / "llama-3.1-8b.json").read_text())


@pytest.mark.parametrize("edit,field,needle", [
    ({"num_key_value_heads": 7}, "num_key_value_heads", "does not divide"),
    ({"num_key_value_heads": 64}, "num_key_value_heads", "does not divide"),
    ({"num_local_experts": 4, "num_experts_per_tok": 8}, "num_experts_per_tok", "more than"),
    ({"quantization_config": "fp8"}, "quantization_config", "must be an object"),
    ({"torch_dtype": [1]}, "torch_dtype", "must be a dtype name"),
    ({"architectures": "LlamaForCausalLM"}, "architectures", "list of names"),
    ({"architectures": [1]}, "architectures", "list of names"),
    ({"text_config": "x", "num_hidden_layers": None}, "text_config", "must be an object"),
])
@pytest.mark.parametrize("command", ["model", "estimate"])
def test_model_config_shapes(tmp_path, capsys, edit, field, needle, command):
    cfg = {k: v for k, v in {**LLAMA_8B, **edit}.items() if v is not None}
    p = tmp_path / "config.json"
    p.write_text(json.dumps(cfg))
    args = (["model", "show", str(p)] if command == "model" else
            ["estimate", "--model", str(p), "--gpu", "H100-SXM", "--input", "8", "--output", "8"])
    code, _, err = cli(capsys, *args)
    assert code == 2
    one_line(err, str(p), field, needle)


# ---- click usage errors: one line, exit 2 -------------------------------------------------

@pytest.mark.parametrize("args,needles", [
    (["workload", "stats", "t.csv", "--classes", "9"], ["hetplan workload stats", "--classes"]),
    (["solve"], ["hetplan solve", "Missing argument"]),
    (["solve", "a.yaml", "b.yaml"], ["hetplan solve", "unexpected extra argument"]),
    (["solve", "a.yaml", "--bogus"], ["hetplan solve", "--bogus"]),
    (["estimate", "--gpu", "H100-SXM", "--input", "5", "--output", "5"], ["--model"]),
    (["bogus"], ["No such command"]),
])
def test_usage_error_is_one_line(capsys, args, needles):
    code, _, err = cli(capsys, *args)
    assert code == 2
    one_line(err, "error: ", *needles)


def test_help_and_exit_codes_survive(capsys):
    code, out, _ = cli(capsys, "solve", "--help")
    assert code == 0 and "Usage: hetplan solve" in out
    code, _, err = cli(capsys, "calibrate")           # a group alone: its help
    assert code == 2 and "fit-overhead" in err


# ---- errors found after loading name the scenario file; --failed edge cases ---------------

def test_unpriced_gpus_name_the_scenario(tmp_path, capsys):
    p = tiny(tmp_path, catalog__gpus=["RTX-4090"])
    code, _, err = cli(capsys, "solve", str(p), "--out", str(tmp_path / "out"))
    assert code == 2
    one_line(err, str(p), "catalog.gpus", "price")


@pytest.mark.parametrize("command", ["solve", "compare", "frontier"])
def test_goodput_without_budget_names_the_scenario(tmp_path, capsys, command):
    p = tiny(tmp_path)
    p.write_text(p.read_text().replace("objective: min_cost", "objective: max_goodput"))
    code, _, err = cli(capsys, command, str(p))
    assert code == 2
    one_line(err, str(p), "constraints.budget_usd_per_hour")


def inventory_scenario(tmp_path: Path) -> Path:
    inv = tmp_path / "inv.yaml"
    inv.write_text("nodes:\n" + "".join(
        f"  - {{id: n{i}, gpu: L40S, gpus: 8, rack: r1, fabric: f1, nic_gbps: 400}}\n"
        for i in (1, 2)))
    p = tiny(tmp_path)
    p.write_text(p.read_text() + f"inventory: {inv}\n")
    return p


@pytest.mark.parametrize("failed,needle", [("n1,n2", "every node"), (",", "names no node")])
def test_failed_that_leaves_nothing(tmp_path, capsys, failed, needle):
    p = inventory_scenario(tmp_path)
    code, _, err = cli(capsys, "solve", str(p), "--failed", failed, "--out",
                       str(tmp_path / "out"))
    assert code == 2
    one_line(err, "--failed", needle)
    assert not (tmp_path / "out").exists()


# ---- plan.json consistency and emit options -----------------------------------------------

def placed_plan(tmp_path: Path) -> dict:
    """A plan.json placed on a 2-node inventory (solved once per test module)."""
    p = inventory_scenario(tmp_path)
    code, _, err = cli_quiet(["solve", str(p), "--out", str(tmp_path / "base")])
    assert code == 0, err
    return json.loads((tmp_path / "base" / "plan.json").read_text())


def cli_quiet(args):
    from cli_harness import run_main
    r = run_main(*args)
    return r.code, r.out, r.err


@pytest.fixture(scope="module")
def placed(tmp_path_factory):
    return placed_plan(tmp_path_factory.mktemp("placed"))


def _shard(d, **k):
    d["placement"]["shards"][0].update(k)


@pytest.mark.parametrize("edit,field,needle", [
    (lambda d: _shard(d, node="zz"), "placement.shards.0.node", "not in placement.nodes"),
    (lambda d: _shard(d, gpu_indices=[99]), "placement.shards.0.gpu_indices", "GPU 99"),
    (lambda d: _shard(d, gpu_indices=[-1]), "placement.shards.0.gpu_indices", "GPU -1"),
    (lambda d: _shard(d, gpu_indices=[0, 0]), "placement.shards.0.gpu_indices", "for tp"),
    (lambda d: _shard(d, pool="nope"), "placement.shards.0.pool", "no pool named"),
    (lambda d: _shard(d, replica=99), "placement.shards.0.replica", "must be between"),
    (lambda d: _shard(d, stage=5), "placement.shards.0.stage", "must be between"),
    (lambda d: d["placement"]["shards"].append(dict(d["placement"]["shards"][0], replica=1)),
     "placement.shards.1", "also held by placement.shards.0"),
    (lambda d: d["placement"]["nodes"][0].update(gpus=0), "placement.nodes.0.gpus",
     "must be between"),
    (lambda d: d["placement"]["nodes"].append(d["placement"]["nodes"][0]),
     "placement.nodes.1.id", "duplicate node id"),
    (lambda d: d["pools"][0]["routes"][0].update(workload_class="zz"),
     "pools.0.routes.0.workload_class", "no class named"),
    (lambda d: d["pools"].append(d["pools"][0]), "pools.1.name", "duplicate pool name"),
])
@pytest.mark.parametrize("command", ["emit", "simulate"])
def test_inconsistent_plan_refused(tmp_path, capsys, placed, edit, field, needle, command):
    import copy
    d = copy.deepcopy(placed)
    if field == "placement.shards.1":       # a second replica's shard on the first's GPU
        d["pools"][0]["replicas"] += 1
        d["pools"][0]["gpus"] += d["pools"][0]["tp"] * d["pools"][0]["pp"]
    edit(d)
    p = tmp_path / "plan.json"
    p.write_text(json.dumps(d))
    out = tmp_path / "out"
    tr = trace(tmp_path, "t.csv", TRACE_HEADER + "0,5,5\n1,5,5\n")
    args = (["emit", str(p), "--target", "vllm", "--out", str(out)] if command == "emit" else
            ["simulate", str(p), "--trace", str(tr), "--out", str(out)])
    code, _, err = cli(capsys, *args)
    assert code == 2
    one_line(err, str(p), field, needle)
    assert not out.exists()


@pytest.mark.parametrize("flag", ["--served-model-name", "--model-path"])
def test_emit_option_with_a_newline(tmp_path, capsys, flag):
    out = tmp_path / "out"
    code, _, err = cli(capsys, "emit", str(ROOT / "tests" / "data" / "emit_plan.json"),
                       "--target", "vllm", "--out", str(out), flag, "a\nb")
    assert code == 2
    one_line(err, flag, "control character")
    assert not out.exists()


@pytest.mark.parametrize("key", ["constraints__roles", "constraints__weight_dtypes",
                                 "constraints__kv_dtypes"])
def test_empty_list_is_an_input_error(tmp_path, capsys, key):
    p = tiny(tmp_path, **{key: []})
    code, _, err = cli(capsys, "solve", str(p))
    assert code == 2
    one_line(err, str(p), key.replace("__", "."), "at least 1 item")


@pytest.mark.parametrize("command", ["emit", "simulate"])
def test_plan_errors_found_late_name_the_plan(tmp_path, capsys, command):
    d = json.loads((ROOT / "tests" / "data" / "emit_plan.json").read_text())
    d["pools"] = [p for p in d["pools"] if p["role"] == "prefill"]
    p = tmp_path / "plan.json"
    p.write_text(json.dumps(d))
    tr = trace(tmp_path, "t.csv", TRACE_HEADER + "0,5,5\n1,5,5\n")
    args = (["emit", str(p), "--target", "vllm", "--out", str(tmp_path / "out")]
            if command == "emit" else ["simulate", str(p), "--trace", str(tr)])
    code, _, err = cli(capsys, *args)
    assert code == 2
    one_line(err, str(p), "pools")


def test_simulate_unknown_kv_link_names_the_flag(tmp_path, capsys):
    tr = trace(tmp_path, "t.csv", TRACE_HEADER + "0,5,5\n1,5,5\n")
    code, _, err = cli(capsys, "simulate", str(ROOT / "tests" / "data" / "emit_plan.json"),
                       "--trace", str(tr), "--kv-link", "bogus")
    assert code == 2
    one_line(err, "--kv-link", "unknown link 'bogus'")


@pytest.mark.parametrize("args,field", [
    (["estimate", "--model", "llama-3.1-8b", "--gpu", "Z9", "--input", "5", "--output", "5"],
     "--gpu"),
    (["estimate", "--model", "nope", "--gpu", "H100-SXM", "--input", "5", "--output", "5"],
     "--model"),
    (["catalog", "show", "Z9"], "GPU"),
    (["catalog", "list", "--prices", "nope"], "--prices"),
    (["model", "show", "nope"], "MODEL"),
])
def test_unknown_names_name_their_flag(capsys, args, field):
    code, _, err = cli(capsys, *args)
    assert code == 2
    one_line(err, f"error: {field}: unknown")


def test_error_quoting_a_hostile_header_escapes_control_characters(tmp_path, capsys):
    p = tmp_path / "t.csv"
    p.write_bytes(b"a\x1b]0;pwned\x07,b\x85\n1,2\n")
    code, _, err = cli(capsys, "workload", "stats", str(p))
    assert code == 2
    one_line(err, str(p), r"a\x1b]0;pwned\x07")
    assert "\x1b" not in err and "\x07" not in err
