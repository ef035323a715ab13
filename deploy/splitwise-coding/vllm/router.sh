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
  --prefill http://prefill-h100-sxm-0:8001 \
  --prefill http://prefill-h100-sxm-1:8000 \
  --prefill http://prefill-h100-sxm-1:8001 \
  --prefill http://prefill-h100-sxm-2:8000 \
  --prefill http://prefill-h100-sxm-2:8001 \
  --prefill http://prefill-h100-sxm-3:8000 \
  --prefill http://prefill-h100-sxm-3:8001 \
  --prefill http://prefill-h100-sxm-4:8000 \
  --prefill http://prefill-h100-sxm-4:8001 \
  --prefill http://prefill-h100-sxm-5:8000 \
  --prefill http://prefill-h100-sxm-5:8001 \
  --prefill http://prefill-h100-sxm-6:8000 \
  --prefill http://prefill-h100-sxm-6:8001 \
  --prefill http://prefill-h100-sxm-7:8000 \
  --prefill http://prefill-l40s-0:8000 \
  --prefill http://prefill-l40s-0:8001 \
  --decode http://decode-h100-sxm-0:8000 \
  --prefill-policy power_of_two \
  --decode-policy power_of_two \
  --kv-connector nixl &

wait
