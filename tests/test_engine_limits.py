"""Engine limits are one object: set in a scenario, the candidates, the perf model, the
simulator's engines and the emitted `vllm serve` flags all follow; plans carry them; bad
values are one-line input errors naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from hetplan.catalog import load_catalog
from hetplan.emit import build_context, emit
from hetplan.emit.serve import EmitOptions
from hetplan.emit.shell import commands_in, parse_command
from hetplan.emit.vllm import serve_commands
from hetplan.engine_limits import DEFAULT_ENGINE_LIMITS, EngineLimits
from hetplan.errors import InputError
from hetplan.perf import PerfModel
from hetplan.plan import Plan, load_plan
from hetplan.planner import plan_scenario, prepare
from hetplan.scenario import load_scenario
from hetplan.simulate.sim import SimOptions, pool_specs

BASE = {
    "name": "limits",
    "model": "llama-3.1-8b",
    "workload": {"synthetic": {
        "arrival": {"process": "poisson", "rate_rps": 8.0},
        "input_tokens": {"dist": "fixed", "value": 3000},
        "output_tokens": {"dist": "fixed", "value": 200},
        "duration_s": 60, "seed": 1}},
    "slo": {"ttft_ms": 3000, "tpot_ms": 60},
    "catalog": {"gpus": ["L40S"], "prices": "2026-04-17-seed"},
    "constraints": {"max_tp": 1, "weight_dtypes": ["fp8"], "kv_dtypes": ["fp8"]},
}
LIMITS = {"max_num_batched_tokens": 4096, "max_num_seqs": 24,
          "gpu_memory_utilization": 0.8, "min_chunk_tokens": 640}


def _scenario(tmp_path, name: str, roles: list[str], engine: dict | None):
    raw = json.loads(json.dumps(BASE))
    raw["constraints"]["roles"] = roles
    if engine is not None:
        raw["constraints"]["engine"] = engine
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_scenario(path, load_catalog())


def _flags(plan: Plan) -> dict[str, dict[str, str]]:
    """Pool name -> {flag: value} of its `vllm serve` commands, as the emitted node scripts
    run them."""
    ctx = build_context(plan, EmitOptions())
    pool_of = {tuple(argv): inst.pool.name for inst, _, _, argv in serve_commands(ctx)}
    out: dict[str, dict[str, str]] = {}
    for rel, text in emit(plan, "vllm").items():
        if rel.startswith("nodes/"):
            for cmd in commands_in(text, "vllm serve"):
                argv = parse_command(cmd)[1][2:]
                out[pool_of[tuple(argv)]] = {a: b for a, b in zip(argv, argv[1:])
                                             if a.startswith("--")}
    return out


def test_candidates_and_perf_model_follow(tmp_path):
    cat = load_catalog()
    d = prepare(_scenario(tmp_path, "d", ["prefill", "decode", "colocated"], None), cat)
    s = _scenario(tmp_path, "l", ["prefill", "decode", "colocated"], LIMITS)
    lim = prepare(s, cat)
    assert lim.perf.limits == EngineLimits(**LIMITS) and d.perf.limits == DEFAULT_ENGINE_LIMITS
    # perf model: less VRAM (0.8 < 0.9) but a smaller activation peak (4096 < 8192 tokens)
    shape = lim.candidates[0].shape
    md, ml = d.perf.memory(shape), lim.perf.memory(shape)
    assert ml.activation_bytes_per_gpu < md.activation_bytes_per_gpu
    assert ml.kv_capacity_tokens < md.kv_capacity_tokens
    gpu_bytes = cat.gpu(shape.gpu).memory_bytes
    assert ml.kv_bytes_per_gpu == pytest.approx(
        gpu_bytes * 0.8 - ml.weights_bytes_per_gpu - ml.activation_bytes_per_gpu)
    by_key = {c.key: c for c in d.candidates}
    roles_seen = set()
    for c in lim.candidates:
        (cap,) = c.per_class.values()
        (ref,) = by_key[c.key].per_class.values()
        if cap.capacity_rps == 0:
            continue
        roles_seen.add(c.role)
        if c.role == "prefill":       # prompts per step within the token budget
            assert cap.batch * 3000 <= 4096 < ref.batch * 3000
        else:                         # batch within max_num_seqs, and it binds
            assert cap.batch <= 24 < ref.batch
        assert cap.capacity_rps < ref.capacity_rps
    assert roles_seen == {"prefill", "decode", "colocated"}


@pytest.mark.parametrize("roles", [["prefill", "decode"], ["colocated"]])
def test_plan_simulator_and_emitted_flags_follow(tmp_path, roles):
    cat = load_catalog()
    s = _scenario(tmp_path, "l", roles, LIMITS)
    plan = plan_scenario(s, cat)
    limits = EngineLimits(**LIMITS)
    assert plan.engine == limits
    # plan.json carries the limits (and only non-default ones)
    path = tmp_path / "plan.json"
    path.write_text(plan.to_json())
    assert json.loads(path.read_text())["engine"] == LIMITS
    assert "engine" not in json.loads(plan.model_copy(update={
        "engine": DEFAULT_ENGINE_LIMITS}).to_json())
    again = load_plan(path)
    assert again.engine == limits

    # simulator: built from a default perf model, yet its engines use the plan's limits
    pm_default = PerfModel(s.model, cat)
    specs = pool_specs(again, pm_default, SimOptions())
    pm_lim = pm_default.with_limits(limits)
    classes = {c.name: c for c in again.classes}
    flags = _flags(again)
    assert set(flags) == {p.name for p in again.pools}
    for p, spec in zip(again.pools, specs):
        shape = next(c.shape for c in prepare(s, cat).candidates
                     if f"{c.role}-{c.shape.label()}" == p.name)
        assert spec.kv_tokens == pm_lim.memory(shape).kv_capacity_tokens
        assert spec.kv_tokens < pm_default.memory(shape).kv_capacity_tokens
        f = flags[p.name]
        assert f["--gpu-memory-utilization"] == "0.8"
        assert int(f["--max-num-seqs"]) <= 24
        if p.role == "prefill":
            assert spec.prefill_max_tokens == 4096
            assert int(f["--max-num-batched-tokens"]) == 4096   # 3000-token prompts < budget
        elif p.role == "colocated":
            r = p.routes[0]
            c = classes[r.workload_class]
            chunk = limits.colocated_chunk_tokens(r.batch, c.mean_input_tokens,
                                                  c.mean_output_tokens)
            assert chunk >= 640                                    # the chunk rule's floor
            assert spec.min_chunk == chunk and spec.token_budget == spec.max_seqs + chunk
            budget = int(f["--max-num-batched-tokens"])
            assert budget == -(-(spec.max_seqs + chunk) // 256) * 256


def test_chunk_rule():
    lim = EngineLimits(max_num_batched_tokens=1024, min_chunk_tokens=32)
    assert lim.colocated_chunk_tokens(0, 3000, 200) == 32              # floor
    assert lim.colocated_chunk_tokens(10, 3000, 200) == 150            # 10 x 3000 / 200
    assert lim.colocated_chunk_tokens(100, 3000, 200) == 1024          # capped by the budget
    assert lim.colocated_chunk_tokens(3, 0.2, 0.0) == 32               # means below 1 count as 1
    assert DEFAULT_ENGINE_LIMITS.colocated_chunk_tokens(1, 100, 100) == 16


def test_defaults_unchanged():
    """hetplan's long-standing values (vLLM 0.33 serve on H100-class GPUs, VRAM share 0.90)."""
    d = EngineLimits()
    assert (d.max_num_batched_tokens, d.max_num_seqs, d.gpu_memory_utilization,
            d.min_chunk_tokens) == (8192, 1024, 0.9, 16)


@pytest.mark.parametrize("engine,field", [
    ({"max_num_seqs": 0}, "constraints.engine.max_num_seqs"),
    ({"max_num_seqs": 10 ** 9}, "constraints.engine.max_num_seqs"),
    ({"max_num_batched_tokens": 8}, "constraints.engine.max_num_batched_tokens"),
    ({"max_num_batched_tokens": 2.5}, "constraints.engine.max_num_batched_tokens"),
    ({"gpu_memory_utilization": 1.5}, "constraints.engine.gpu_memory_utilization"),
    ({"gpu_memory_utilization": float("inf")}, "constraints.engine.gpu_memory_utilization"),
    ({"gpu_memory_utilization": float("nan")}, "constraints.engine.gpu_memory_utilization"),
    ({"min_chunk_tokens": 0}, "constraints.engine.min_chunk_tokens"),
    ({"min_chunk_tokens": 9000}, "constraints.engine"),
    ({"max_seqs": 4}, "constraints.engine.max_seqs"),
])
def test_bounds_are_one_line_input_errors(tmp_path, engine, field):
    with pytest.raises(InputError) as e:
        _scenario(tmp_path, "bad", ["colocated"], engine)
    msg = str(e.value)
    assert "\n" not in msg and f": {field}: " in msg


def test_bad_limits_in_a_plan_name_the_file(tmp_path):
    raw = json.loads((Path(__file__).parent / "data" / "emit_plan.json").read_text())
    raw["engine"] = {"max_num_seqs": -1}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(InputError) as e:
        load_plan(path)
    assert str(e.value).startswith(f"{path}: engine.max_num_seqs: ")
