"""Check emitted commands with vLLM 0.33's and vllm-router's own parsers, in the CPU-only
venv that scripts/install_vllm_cpu.sh builds (its path: HETPLAN_VLLM_VENV, default
~/.cache/hetplan/vllm-0.33.0-cpu). One subprocess per batch: vLLM imports in ~5 s, then
each serve config takes ~0.1-0.3 s.

`vllm serve` commands get `--model` replaced by a temporary folder holding only the model's
config.json (from the catalog), so create_engine_config() sees the real architecture
(heads, context length) without weights or network.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hetplan.model import resolve_model_path

WORKER = Path(__file__).with_name("vllm_worker.py")
DEFAULT_VENV = Path.home() / ".cache" / "hetplan" / "vllm-0.33.0-cpu"


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    error: str | None
    summary: dict | None


def venv_python() -> Path | None:
    """The check venv's interpreter, or None when it is not installed."""
    venv = Path(os.environ.get("HETPLAN_VLLM_VENV") or DEFAULT_VENV)
    py = venv / "bin" / "python"
    return py if py.exists() and (venv / ".hetplan-stamp").exists() else None


def check(items: list[tuple[str, list[str] | dict, str | None]],
          timeout_s: float = 600.0) -> list[CheckResult]:
    """Check (kind, argv, model ref) items: kind 'serve' (argv after `vllm serve`; model ref
    names the config.json to use), 'bench' (after `vllm bench serve`), 'router' (after
    `vllm-router`), 'dynamo' (after `python3 -m dynamo.vllm`; model ref as for 'serve'),
    'k8s' (argv is one Kubernetes object, a dict) or 'dynamo-planner' (a Dynamo planner
    config, a dict). All in one subprocess: batch them."""
    py = venv_python()
    if py is None:
        raise RuntimeError("the vLLM check venv is missing: run scripts/install_vllm_cpu.sh")
    with tempfile.TemporaryDirectory(prefix="hetplan-vllm-check-") as tmp:
        model_dirs: dict[str, str] = {}
        payload = []
        for kind, argv, model in items:
            model_dir = None
            if kind in ("serve", "dynamo") and model is not None:
                if model not in model_dirs:
                    d = Path(tmp) / f"model{len(model_dirs)}"
                    d.mkdir()
                    shutil.copyfile(resolve_model_path(model), d / "config.json")
                    model_dirs[model] = str(d)
                model_dir = model_dirs[model]
            payload.append({"kind": kind, "argv": argv if isinstance(argv, dict) else list(argv),
                            "model_dir": model_dir})
        out = Path(tmp) / "results.json"
        env = {**os.environ, "VLLM_TARGET_DEVICE": "cpu", "HF_HUB_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false"}
        env.pop("PYTHONPATH", None)
        # -P: do not put this folder (which holds hetplan/emit/vllm.py) first on sys.path
        proc = subprocess.run([str(py), "-P", str(WORKER), str(out)],
                              input=json.dumps(payload), text=True, capture_output=True,
                              timeout=timeout_s, env=env, cwd=tmp)
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise RuntimeError("vLLM check worker failed: " + " | ".join(tail))
        return [CheckResult(**r) for r in json.loads(out.read_text(encoding="utf-8"))]
