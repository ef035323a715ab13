"""Scaling objects of a capacity schedule (hetplan.emit.scaling): the cron windows KEDA
would follow give back the schedule minute by minute, the objects target the workloads
the k8s target emits, the CRD rules refuse broken ScaledObjects, Dynamo planner bounds.
Schema checks of these objects run in the shared batch of test_emit_schemas.py."""

from __future__ import annotations

import pytest
import yaml

from crd_required import custom_resource_errors
from hetplan.emit import EmitOptions, emit
from hetplan.emit.scaling import (DAY_S, WEEK_S, PoolSchedule, ReplicaSchedule,
                                  check_cron_horizon, check_timezone, cron_triggers,
                                  planner_bounds)
from hetplan.emit.schedule import k8s_scaling_files
from hetplan.errors import InputError
from scaling_fixture import DECODE, PREFILL, golden_schedule


def _cron_minute(expr: str, horizon_s: int) -> int:
    """Minute of the horizon (slot 0 at 00:00, Monday for a week) a cron expression of
    the form 'M H * * *' or 'M H * * D' fires at (D: 0 = Sunday)."""
    m, h, dom, mon, dow = expr.split()
    assert dom == mon == "*"
    day = 0 if dow == "*" else (int(dow) - 1) % 7
    assert dow == "*" or horizon_s == WEEK_S
    return day * 1440 + int(h) * 60 + int(m)


def _keda_replicas(floor: int, triggers: list[dict], minute: int, horizon_s: int) -> int:
    """What KEDA asks for at `minute`: the highest desiredReplicas of the windows
    [start, end) that hold it (wrapping around the horizon), else the floor."""
    n, span = floor, horizon_s // 60
    for t in triggers:
        s = _cron_minute(t["metadata"]["start"], horizon_s)
        e = _cron_minute(t["metadata"]["end"], horizon_s)
        if (minute - s) % span < (e - s) % span:
            n = max(n, int(t["metadata"]["desiredReplicas"]))
    return n


@pytest.mark.parametrize("horizon_s", [DAY_S, WEEK_S])
def test_cron_windows_replay_the_schedule_with_warmup_lead(horizon_s):
    slots = 24 if horizon_s == DAY_S else 7 * 24
    reps = (PREFILL * (slots // 24))[:slots]
    if horizon_s == WEEK_S:         # a weekly pattern: Sunday's peak slots run 6
        reps = reps[:-10] + (6,) * 4 + reps[-6:]
    p = PoolSchedule("prefill-x", reps, (1,) * slots, warmup_s=150.0)
    trig = cron_triggers(p, 3600.0, horizon_s, "Etc/UTC")
    assert len(trig) == sum(1 for t in range(slots) if reps[t] != reps[t - 1]
                            and reps[t] > min(reps))
    lead = 3                         # 150 s rounded up to whole minutes
    # the minutes around every change KEDA could see: slot starts and ends, lead edges
    probes = {60 * t + m for t in range(slots) for m in (0, 1, 30, 56, 57, 58, 59)}
    for minute in sorted(probes):
        t = minute // 60
        nxt = (t + 1) % slots
        want = reps[t]
        if minute % 60 >= 60 - lead and reps[nxt] > reps[t]:
            want = reps[nxt]         # the next slot's replicas start their warm-up now
        assert _keda_replicas(p.floor, trig, minute, horizon_s) == want, (minute, t)


def test_cron_horizon_and_timezone_errors_are_one_line():
    p = PoolSchedule("a", (1, 2), (0, 0), 0.0)
    for s, what in ((ReplicaSchedule(3600.0, (p,)), "must span 24 h or 168 h"),
                    (ReplicaSchedule(43_230.0, (p,)), "not whole minutes")):
        with pytest.raises(InputError, match=what) as e:
            check_cron_horizon(s)
        assert "\n" not in str(e.value)
    assert check_timezone("Europe/Berlin") == "Europe/Berlin"
    with pytest.raises(InputError, match="unknown time zone"):
        check_timezone("Mars/Olympus\n* * * * *")


def test_scaling_objects_target_the_workloads_the_k8s_target_emits():
    plan, s = golden_schedule()
    files = k8s_scaling_files(plan, s, EmitOptions(), "Etc/UTC")
    assert files == k8s_scaling_files(plan, s, EmitOptions(), "Etc/UTC")   # deterministic
    k8s = {d["metadata"]["name"]: d for text in emit(plan, "k8s").values()
           if text.startswith("apiVersion") for d in yaml.safe_load_all(text)
           if d["kind"] == "Deployment"}
    keda = list(yaml.safe_load_all(files["keda.yaml"]))
    hpas = list(yaml.safe_load_all(files["hpa.yaml"]))
    by_pool = {p.pool: p for p in s.pools}
    for so, h, pool in zip(keda, hpas, plan.pools):
        ref = so["spec"]["scaleTargetRef"]
        assert ref == h["spec"]["scaleTargetRef"]
        assert ref["kind"] == "Deployment" and ref["name"] in k8s   # the k8s target's name
        dep = next(yaml.safe_load_all(files[f"{ref['name']}.yaml"]))
        assert dep["metadata"]["name"] == ref["name"] and "replicas" not in dep["spec"]
        assert dep["spec"]["template"] == k8s[ref["name"]]["spec"]["template"]
        assert so["spec"]["minReplicaCount"] == min(by_pool[pool.name].replicas)
        assert so["spec"]["maxReplicaCount"] == h["spec"]["maxReplicas"] == max(
            by_pool[pool.name].replicas)
        assert custom_resource_errors(so) == []
    # the CRD rules are no rubber stamp
    bad = yaml.safe_load(yaml.safe_dump(keda[0]))
    del bad["spec"]["scaleTargetRef"]["name"]
    bad["spec"]["triggers"][0]["metadata"]["desiredReplicas"] = 3
    bad["spec"]["triggers"][1]["metadata"]["end"] = bad["spec"]["triggers"][1]["metadata"][
        "start"]
    assert custom_resource_errors(bad) == [
        "spec.scaleTargetRef.name is required",
        "spec.triggers[0].metadata holds a non-string value",
        "spec.triggers[1]: start and end are the same"]


def test_dynamo_planner_bounds_follow_the_schedule():
    plan, s = golden_schedule()
    b = planner_bounds(plan, s)
    # prefill: 1 GPU per replica, decode: 2 (the golden plan); the most GPUs in a slot
    # is 4 x 1 + 2 x 2 = 8 (hours 10-17: prefill 4, decode 2)
    assert b == {"environment": "kubernetes", "backend": "vllm", "mode": "disagg",
                 "max_gpu_budget": 8, "min_endpoint": 1, "prefill_min_endpoint": 1,
                 "decode_min_endpoint": 1, "prefill_engine_num_gpu": 1,
                 "decode_engine_num_gpu": 2}
    two_decode = plan.model_copy(update={"pools": plan.pools + [plan.pools[1].model_copy(
        update={"name": "decode-b"})]})
    s2 = ReplicaSchedule(s.slot_s, s.pools + (PoolSchedule("decode-b", DECODE, DECODE,
                                                           0.0),))
    assert planner_bounds(two_decode, s2) is None


def test_cli_emit_is_refused_before_solving(tmp_path):
    from cli_harness import run_main
    sc = tmp_path / "missing.yaml"           # never read: the flags are checked first
    for args, what in ((["--emit", "k8s"], "--out"),
                       (["--emit", "nope", "--out", str(tmp_path)], "unknown target"),
                       (["--emit", "k8s", "--out", str(tmp_path), "--timezone", "X/Y"],
                        "unknown time zone")):
        res = run_main("schedule", str(sc), *args)
        assert res.code == 2 and what in res.err, res.err + res.tb
        assert len(res.err.strip().splitlines()) == 1
