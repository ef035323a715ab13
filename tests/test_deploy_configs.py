"""The committed deploy/ configs match a fresh solve + emit of every scenario in workloads/
(scripts/regenerate_configs.sh, which the CI workflow runs too), and the script catches drift."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "regenerate_configs.sh"


def run_script(*args: str, env_extra: dict[str, str] | None = None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env=env)


SCENARIOS = sorted((ROOT / "workloads").glob("*.yaml"))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.stem for s in SCENARIOS])
def test_committed_deploy_configs_are_fresh(scenario):
    """One scenario per test, so pytest-xdist spreads the solve --validate runs (the tuner
    simulates up to 16 plans each) over the workers."""
    r = run_script(env_extra={"HETPLAN_SCENARIOS": str(scenario.relative_to(ROOT))})
    assert r.returncode == 0, f"deploy/ is stale:\n{r.stdout[-4000:]}\n{r.stderr[-2000:]}"
    assert "up to date for" in r.stderr


def test_deploy_holds_exactly_the_scenarios():
    """What the per-scenario checks cannot see: a committed folder with no scenario."""
    committed = {p.name for p in (ROOT / "deploy").iterdir() if p.is_dir()}
    assert committed == {s.stem for s in SCENARIOS}


def test_script_reports_drift_with_a_diff(tmp_path):
    # the cheapest shipped scenario to validate (met in the tuner's first round)
    name = "splitwise-conversation"
    deploy = tmp_path / "deploy"
    shutil.copytree(ROOT / "deploy" / name, deploy / name)
    router = deploy / name / "vllm" / "router.sh"
    router.write_text(router.read_text().replace("--port 30000", "--port 30001"))
    (deploy / name / "k8s" / "router.yaml").unlink()
    env = {"HETPLAN_DEPLOY_DIR": str(deploy), "HETPLAN_SCENARIOS": f"workloads/{name}.yaml"}
    r = run_script(env_extra=env)
    assert r.returncode == 1, r.stderr
    assert "-  --port 30001" in r.stdout and "+  --port 30000" in r.stdout
    assert "router.yaml" in r.stdout
    assert "stale" in r.stderr

    w = run_script("--write", env_extra=env)
    assert w.returncode == 0, w.stderr
    assert run_script(env_extra=env).returncode == 0
