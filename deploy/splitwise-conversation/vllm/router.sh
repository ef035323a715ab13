#!/usr/bin/env bash
# hetplan: vllm-router in front of the plan's instances (pip install vllm-router).
# Policies balance load inside a phase; the plan's class split is not enforced.
set -euo pipefail

# router for the prefill/decode instances
vllm-router \
  --host 0.0.0.0 \
  --port 30000 \
  --vllm-pd-disaggregation \
  --prefill http://prefill-h100-sxm-0:8000 \
  --decode http://decode-a100-80g-pcie-0:8000 \
  --prefill-policy power_of_two \
  --decode-policy power_of_two \
  --kv-connector nixl &

wait
