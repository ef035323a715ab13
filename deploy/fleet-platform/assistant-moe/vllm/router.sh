#!/usr/bin/env bash
# hetplan: vllm-router in front of the plan's instances (pip install vllm-router).
# Policies balance load inside a phase; the plan's class split is not enforced.
set -euo pipefail

# router for the colocated instances
vllm-router \
  --host 0.0.0.0 \
  --port 30000 \
  --policy power_of_two \
  --worker-urls http://b200-01:8000 &

wait
