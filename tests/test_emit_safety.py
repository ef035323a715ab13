"""Emitted files are safe by construction: hostile names cannot break out of comments (run
with a stub `vllm`), node ids cannot write outside --out, output folders are replaced as a
whole (a failure keeps the old one, a rewrite drops stale files, no temporary folders stay),
plan.json is validated on read, and hosts/bench files say what the plan really uses."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hetplan.cli import app
from hetplan.emit import emit, write_files
from hetplan.emit.shell import comment, one_line
from hetplan.errors import InputError
from hetplan.io import confined_path, output_folder
from hetplan.plan import PlacedNode, PlacedShard, Placement, load_plan

DATA = Path(__file__).parent / "data"
PLAN = DATA / "emit_plan.json"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def plan():
    return load_plan(PLAN)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _leftovers(parent: Path, name: str) -> list[str]:
    """Temporary folders output_folder would have left beside `parent / name`."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


def _hostile(marker: Path) -> str:
    return f"x\ntouch {marker}\n\r\u2028#\x1b]0;t\x07"


def _hostile_plan(plan, marker: Path):
    evil = _hostile(marker)
    classes = {c.name: f"{c.name}{evil}" for c in plan.classes}
    pools = [p.model_copy(update={
        "name": f"{p.name}{evil}",
        "routes": [r.model_copy(update={"workload_class": classes[r.workload_class]})
                   for r in p.routes]}) for p in plan.pools]
    return plan.model_copy(update={
        "scenario": f"s{evil}", "model": f"m{evil}", "pools": pools,
        "classes": [c.model_copy(update={"name": classes[c.name]}) for c in plan.classes]})


@pytest.mark.parametrize("control", ["\n", "\r", "\x1b", "\x7f", "\x85", "\u2028", "\u2029"])
def test_comment_is_one_line(control):
    line = comment(f"a{control}b")
    assert line.startswith("# ") and len(line.splitlines()) == 1 and control not in line
    assert one_line("plain text, no escapes") == "plain text, no escapes"


@pytest.mark.parametrize("target", ["vllm", "dynamo"])
def test_hostile_names_do_not_run(plan, target, tmp_path):
    """Every script the target emits, run with stub programs on PATH: a newline plus
    `touch MARKER` in the scenario, model, pool and class names creates nothing."""
    marker = tmp_path / "pwned"
    out = tmp_path / "out"
    files = emit(_hostile_plan(plan, marker), target)
    write_files(out, files)
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for prog in ("vllm", "vllm-router", "python3"):
        (stubs / prog).write_text("#!/bin/sh\nexit 0\n")
        (stubs / prog).chmod(0o755)
    env = {**os.environ, "PATH": f"{stubs}{os.pathsep}{os.environ['PATH']}"}
    scripts = sorted(out.rglob("*.sh"))
    assert len(scripts) >= 3
    runs = [subprocess.run(["bash", str(s)], cwd=out, env=env, capture_output=True,
                           text=True, timeout=60) for s in scripts]
    assert not marker.exists()
    assert [(r.returncode, r.stderr) for r in runs] == [(0, "")] * len(scripts)
    logs = sorted(p for p in tmp_path.rglob("*.log"))     # each run's log, where it belongs
    assert logs and {p.parent for p in logs} <= {out / "logs", out / "results"}
    # the names are there, escaped, in the comments (in arguments they stay, quoted)
    escaped = f"x\\x0atouch {marker}\\x0a\\x0d\\u2028#\\x1b]0;t\\x07"
    comments = [ln for rel, f in files.items() if rel.endswith(".sh")
                for ln in f.split("\n") if ln.lstrip().startswith("#")]
    assert any(escaped in ln for ln in comments)


def test_run_time_file_names_stay_in_their_folder():
    from hetplan.emit.shell import file_part
    assert file_part("decode-H100-SXM-tp2") == "decode-H100-SXM-tp2"
    names = ["../../etc/x", "a/b", "a_b", ".hidden", "x\ny", ""]
    parts = [file_part(n) for n in names]
    assert len(set(parts)) == len(parts)
    assert all(p and "/" not in p and not p.startswith(".") and p.isprintable()
               for p in parts)


def test_hostile_names_in_hosts_and_readme(plan, tmp_path):
    files = emit(_hostile_plan(plan, tmp_path / "m"), "vllm")
    for rel in ("hosts.txt", "README.md"):
        assert not any(ch in files[rel] for ch in "\r\x1b\x07\u2028"), rel
        assert not any(line.startswith("touch") for line in files[rel].split("\n")), rel
    for line in files["hosts.txt"].splitlines():
        assert len(line.split("\t")) == 3


def _placed(plan, node_id: str, address: str | None = None):
    nodes = [PlacedNode(id=node_id, gpu=p.gpu, gpus=8, rack="r", fabric="f",
                        address=address or "10.0.0.1") for p in plan.pools[:1]]
    nodes.append(PlacedNode(id="ok-node", gpu=plan.pools[1].gpu, gpus=8, rack="r",
                            fabric="f", address="10.0.0.2"))
    shards = [PlacedShard(pool=plan.pools[0].name, replica=r, stage=0, node=node_id,
                          gpu_indices=[r]) for r in range(plan.pools[0].replicas)]
    shards.append(PlacedShard(pool=plan.pools[1].name, replica=0, stage=0, node="ok-node",
                              gpu_indices=[0, 1]))
    return plan.model_copy(update={"placement": Placement(inventory="inv.yaml", nodes=nodes,
                                                          shards=shards)})


@pytest.mark.parametrize("node_id", ["../evil", "a/b", "..", ".hidden", "/abs", "a\\b",
                                     "n\ntouch x", "n\r"])
@pytest.mark.parametrize("target", ["vllm", "dynamo"])
def test_node_ids_cannot_leave_the_folder(plan, node_id, target, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(InputError, match="node"):
        write_files(out, emit(_placed(plan, node_id), target))
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_node_address_with_whitespace_is_refused(plan):
    with pytest.raises(InputError, match="address"):
        emit(_placed(plan, "n1", address="10.0.0.1 evil"), "vllm")
    files = emit(_placed(plan, "n1"), "vllm")        # the same plan with a sane address
    assert "nodes/n1.sh" in files


@pytest.mark.parametrize("rel", ["../x", "/abs", "a/../../b", "nodes/..", "", "a//b",
                                 "a\nb", "a\\b"])
def test_confined_path_refuses_escapes(tmp_path, rel):
    with pytest.raises(InputError):
        confined_path(tmp_path, rel)


def test_confined_path_refuses_a_symlink_out(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(InputError, match="outside"):
        confined_path(root, "link/x.sh")
    assert confined_path(root, "nodes/a.sh") == root / "nodes" / "a.sh"


def test_failed_write_keeps_the_previous_folder(plan, tmp_path):
    out = tmp_path / "out"
    write_files(out, emit(plan, "vllm"))
    before = _tree(out)
    bad = {**emit(plan, "vllm"), "../escape.sh": "echo\n"}
    with pytest.raises(InputError):
        write_files(out, bad)
    assert _tree(out) == before
    assert _leftovers(tmp_path, "out") == [] and not (tmp_path / "escape.sh").exists()
    with pytest.raises(KeyboardInterrupt):          # an interrupted write, too
        with output_folder(out) as tmp:
            (tmp / "half.txt").write_text("x")
            raise KeyboardInterrupt
    assert _tree(out) == before and _leftovers(tmp_path, "out") == []


def test_reemit_removes_stale_files_and_keeps_foreign_ones(plan, tmp_path):
    out = tmp_path / "out"
    write_files(out, emit(plan, "vllm"))
    assert (out / "nodes" / "prefill-l40s-0.sh").exists()
    (out / "logs").mkdir()
    (out / "logs" / "x.log").write_text("log\n")
    (out / "notes.txt").write_text("mine\n")
    other = plan.model_copy(update={"pools": [
        plan.pools[0].model_copy(update={"gpu": "H100-SXM"}), plan.pools[1]]})
    new = emit(other, "vllm")
    write_files(out, new)
    assert not (out / "nodes" / "prefill-l40s-0.sh").exists()
    assert {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} == \
        set(new) | {"logs/x.log", "notes.txt"}
    assert os.access(out / "router.sh", os.X_OK)
    # k8s: a manifest of a pool the new plan lacks goes; a YAML hetplan did not write stays
    k8s = tmp_path / "k8s"
    write_files(k8s, emit(plan, "k8s"))
    (k8s / "mine.yaml").write_text("a: 1\n")
    stale = sorted(p.name for p in k8s.glob("decode-*.yaml"))
    renamed = plan.model_copy(update={"pools": [
        plan.pools[0], plan.pools[1].model_copy(update={"name": "decode-renamed"})]})
    write_files(k8s, emit(renamed, "k8s"))
    assert stale and not any((k8s / s).exists() for s in stale)
    assert (k8s / "mine.yaml").exists() and (k8s / "decode-renamed.yaml").exists()
    assert _leftovers(tmp_path, "out") == [] and _leftovers(tmp_path, "k8s") == []


def test_a_foreign_file_in_the_way_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine\n")
    with pytest.raises(InputError, match="did not write"):
        with output_folder(out, owns=lambda p: False) as tmp:
            (tmp / "keep.txt").write_text("new\n")
    assert (out / "keep.txt").read_text() == "mine\n" and _leftovers(tmp_path, "out") == []


def test_current_folder_as_out_keeps_what_is_not_emitted(plan, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    (work / "setup.py").write_text("mine\n")
    monkeypatch.chdir(work)
    files = emit(plan, "vllm")
    write_files(Path("."), files)
    assert _tree(work) == {**{k: v.encode() for k, v in files.items()},
                           "setup.py": b"mine\n"}
    assert _leftovers(tmp_path, "work") == []
    (work / "setup.py").unlink()                   # all ours now: still rewritten in place
    write_files(Path("."), files)
    assert Path.cwd() == work and _tree(work) == {k: v.encode() for k, v in files.items()}


def test_solve_out_is_replaced_as_a_whole(tmp_path):
    """A refused --emit leaves the previous outputs; a re-solve removes its own stale
    files (sim.json of an earlier --validate) and keeps files it does not own."""
    out = tmp_path / "d"
    out.mkdir()
    old = {"plan.json": "old plan\n", "report.md": "old report\n", "sim.json": "{}\n",
           "notes.txt": "mine\n"}
    for name, text in old.items():
        (out / name).write_text(text)
    cmd = [sys.executable, "-m", "hetplan.cli", "solve", str(REPO / "workloads" /
                                                             "default.yaml"), "--out", str(out)]
    r = subprocess.run(cmd + ["--emit", "bogus"], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 2 and "--emit" in r.stderr
    assert {p.name: p.read_text() for p in out.iterdir()} == old
    r = subprocess.run(cmd + ["--emit", "vllm"], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "plan.json", "report.md",
                                                     "vllm"]
    assert load_plan(out / "plan.json").pools
    assert _leftovers(tmp_path, "d") == []


def _bad_plan(tmp_path, edit) -> Path:
    raw = json.loads(PLAN.read_text())
    edit(raw)
    p = tmp_path / "plan.json"
    p.write_text(json.dumps(raw))
    return p


def _set(path: str, value):
    def edit(raw):
        obj = raw
        keys = path.split(".")
        for k in keys[:-1]:
            obj = obj[int(k)] if isinstance(obj, list) else obj[k]
        obj[keys[-1]] = value
    return edit


@pytest.mark.parametrize("field,value", [
    ("pools.0.replicas", -1), ("pools.0.replicas", 1e7), ("pools.1.tp", 0),
    ("pools.1.tp", 16), ("pools.0.pp", 0), ("pools.0.routes.0.batch", -3),
    ("pools.0.routes.1.rate_rps", -1.0), ("pools.0.gpu", "NoSuchGPU"),
    ("pools.1.kv_dtype", "fp3"), ("pools.0.role", "router"), ("pools.0.gpus", 3),
    ("cost_usd_per_hour", math.nan), ("pools.1.utilization", math.inf),
    ("scenario", "s\ntouch x"), ("pools.0.name", "p\rq"), ("classes.0.name", "c\x1b"),
    ("slo.tpot_ms", -1.0), ("slo.percentile", 500), ("slo.ttft_ms", "fast"),
])
def test_bad_plan_fields_are_refused(tmp_path, field, value):
    path = _bad_plan(tmp_path, _set(field, value))
    with pytest.raises(InputError) as e:
        load_plan(path)
    assert e.value.file == str(path) and e.value.field == field
    r = CliRunner().invoke(app, ["emit", str(path), "--target", "vllm",
                                 "--out", str(tmp_path / "out")])
    assert isinstance(r.exception, InputError) and not (tmp_path / "out").exists()


def test_bad_plan_is_one_line_and_exit_2(tmp_path):
    path = _bad_plan(tmp_path, _set("pools.0.replicas", 1e7))
    r = subprocess.run([sys.executable, "-m", "hetplan.cli", "emit", str(path), "--target",
                        "vllm", "--out", str(tmp_path / "out")], capture_output=True,
                       text=True, cwd=REPO, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"error: {path}: pools.0.replicas: must be between 1 and 10000"]


def test_bad_placement_node_id_is_refused(tmp_path, plan):
    placed = json.loads(_placed(plan, "n1").to_json())
    placed["placement"]["nodes"][0]["id"] = "n1\ntouch x"
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(placed))
    with pytest.raises(InputError) as e:
        load_plan(path)
    assert e.value.field == "placement.nodes.0.id"


def test_hosts_count_the_gpus_the_plan_uses(plan):
    """hosts.txt and node headers give the GPUs used per node; they add up to the plan's
    GPUs (the packing puts both 1-GPU prefill replicas on one 8-GPU L40S node)."""
    files = emit(plan, "vllm")
    used = {}
    for line in files["hosts.txt"].splitlines():
        address, name, note = line.split("\t")
        used[name] = int(note.removeprefix("# ").split("x ")[0])
        assert f"node {name}: {used[name]}x " in files[f"nodes/{name}.sh"]
    assert sum(used.values()) == sum(p.replicas * p.tp * p.pp for p in plan.pools)
    assert used == {"prefill-l40s-0": 2, "decode-h100-sxm-0": 2}
    placed = emit(_placed(plan, "n1"), "vllm")["hosts.txt"]
    assert "2x L40S used of 8 on the node" in placed


def test_bench_labels_every_serving_pool(plan, tmp_path):
    """A class served by two decode pools of different GPUs names both, with their shares,
    and carries no single GPU label, so import-bench asks for --gpu instead of filing the
    mixed measurement under one pool's GPU."""
    from hetplan.emit.bench import bench_argvs, pool_labels
    from hetplan.emit.serve import EmitOptions
    from hetplan.emit import build_context
    from hetplan.perf.bench_import import measurements_from_bench

    dec = plan.pools[1]
    b200 = dec.model_copy(update={
        "name": "decode-B200", "gpu": "B200", "tp": 1, "gpus": 1,
        "routes": [r.model_copy(update={"rate_rps": 2.0}) for r in dec.routes
                   if r.workload_class == "short"]})
    short = [r.model_copy(update={"rate_rps": 6.0}) if r.workload_class == "short" else r
             for r in dec.routes]
    mixed = plan.model_copy(update={"pools": [plan.pools[0],
                                              dec.model_copy(update={"routes": short}),
                                              b200]})
    labels = pool_labels(mixed, "short")
    assert labels == [f"hetplan_pools={dec.name}:H100-SXM:tp2:0.75,decode-B200:B200:tp1:0.25"]
    assert pool_labels(mixed, "long")[:2] == ["hetplan_gpu=H100-SXM", "hetplan_tp=2"]
    text = emit(mixed, "vllm")["bench.sh"]
    assert "decode-B200 (B200 tp=1, 25%)" in text and "needs --gpu and --tp" in text
    argv = dict(bench_argvs(build_context(mixed, EmitOptions())))["short"]
    meta = dict(a.split("=", 1) for a in argv[argv.index("--metadata") + 1:])
    result = {"completed": 10, "total_input_tokens": 5000, "total_output_tokens": 2000,
              "request_throughput": 1.0, "mean_e2el_ms": 1000.0, "median_tpot_ms": 20.0,
              **meta}
    path = tmp_path / "bench-short.json"
    path.write_text(json.dumps(result))
    with pytest.raises(InputError, match="unknown gpu"):
        measurements_from_bench(path)


def test_simulate_out_replaces_its_pair_and_keeps_the_plan(tmp_path):
    out = tmp_path / "d"
    out.mkdir()
    plan_text = (REPO / "deploy" / "default" / "plan.json").read_text()
    (out / "plan.json").write_text(plan_text)
    (out / "latency_cdf.png").write_text("stale\n")
    r = subprocess.run([sys.executable, "-m", "hetplan.cli", "simulate", str(out / "plan.json"),
                        "--requests", "200", "--out", str(out)], capture_output=True,
                       text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["latency_cdf.png", "plan.json",
                                                     "sim.json"]
    assert (out / "plan.json").read_text() == plan_text
    assert (out / "latency_cdf.png").read_bytes().startswith(b"\x89PNG")
    assert json.loads((out / "sim.json").read_text()) and _leftovers(tmp_path, "d") == []
