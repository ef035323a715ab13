#!/usr/bin/env bash
# Install vLLM 0.33.0 without its GPU dependencies into its own virtual environment, so the
# tests can check every emitted `vllm serve` / `vllm bench serve` command with vLLM's own
# parsers and create_engine_config() on a CPU-only machine (shared/design/VLLM.md), every
# Dynamo worker command with Dynamo's parser, and Kubernetes objects with kubernetes-validate.
#
# The venv lives outside the checkout (default ~/.cache/hetplan/vllm-0.33.0-cpu, override
# with HETPLAN_VLLM_VENV) so fresh clones and CI runs reuse it; it is kept apart from the
# interpreter hetplan runs in because vLLM pins versions (transformers, fastapi, ...) that
# must not leak into it. Idempotent: a stamp of the pinned versions makes a rerun a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${HETPLAN_VLLM_VENV:-$HOME/.cache/hetplan/vllm-0.33.0-cpu}"
REQS=scripts/vllm-cpu-requirements.txt
STAMP="$VENV/.hetplan-stamp"
want="torch==2.13.0 vllm==0.33.0 $(sha256sum "$REQS" | cut -d' ' -f1)"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/python" ]; then
    echo "vLLM check environment ready: $VENV"
    exit 0
fi

start=$(date +%s)
PIP=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
base="${want% *}"                             # the torch and vLLM pins, without the list's hash
if [ -f "$STAMP" ] && [ "$(cut -d' ' -f1-2 "$STAMP")" = "$base" ] && [ -x "$VENV/bin/python" ]; then
    # Same torch and vLLM, a changed pin list: install what it adds or moves (pip skips the
    # rest) instead of rebuilding the venv, which takes 10-30 minutes on 2 cores.
    "${PIP[@]}" --no-deps -r "$REQS"
else
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "${PIP[@]}" torch==2.13.0                 # the CPU build (a local file on these machines)
    "${PIP[@]}" --no-deps vllm==0.33.0        # no CUDA wheels, no kernels: parser and config only
    "${PIP[@]}" --no-deps -r "$REQS"
fi
# Smoke test: the parsers, the engine-config builder and the schema validator import.
VLLM_TARGET_DEVICE=cpu HF_HUB_OFFLINE=1 "$VENV/bin/python" -c \
    'import vllm.engine.arg_utils, vllm.entrypoints.common.cli_args, vllm.benchmarks.serve
import dynamo.vllm.args, kubernetes_validate' \
    >/dev/null 2>&1
echo "$want" > "$STAMP"
echo "vLLM check environment installed in $(( $(date +%s) - start )) s: $VENV"
