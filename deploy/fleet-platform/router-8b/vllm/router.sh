#!/usr/bin/env bash
# hetplan: vllm-router in front of the plan's instances (pip install vllm-router).
# Policies balance load inside a phase; the plan's class split is not enforced.
set -euo pipefail

# router for the prefill/decode instances
vllm-router \
  --host 0.0.0.0 \
  --port 30000 \
  --vllm-pd-disaggregation \
  --prefill http://10.0.2.3:8000 \
  --prefill http://10.0.2.4:8000 \
  --prefill http://10.0.2.4:8001 \
  --prefill http://10.0.2.4:8002 \
  --prefill http://10.0.2.4:8003 \
  --prefill http://10.0.2.4:8004 \
  --prefill http://10.0.2.4:8005 \
  --prefill http://10.0.2.4:8006 \
  --prefill http://10.0.2.4:8007 \
  --prefill http://10.0.1.2:8000 \
  --prefill http://10.0.1.2:8001 \
  --prefill http://10.0.1.2:8002 \
  --prefill http://10.0.1.2:8003 \
  --prefill http://10.0.1.3:8000 \
  --prefill http://10.0.1.3:8001 \
  --prefill http://10.0.1.3:8002 \
  --prefill http://10.0.1.3:8003 \
  --prefill http://10.0.1.3:8004 \
  --prefill http://10.0.1.3:8005 \
  --prefill http://10.0.1.3:8006 \
  --prefill http://10.0.1.3:8007 \
  --prefill http://10.0.1.4:8000 \
  --prefill http://10.0.1.4:8001 \
  --prefill http://10.0.1.4:8002 \
  --prefill http://10.0.1.4:8003 \
  --prefill http://10.0.1.4:8004 \
  --prefill http://10.0.1.4:8005 \
  --prefill http://10.0.1.4:8006 \
  --prefill http://10.0.1.4:8007 \
  --prefill http://10.0.1.5:8000 \
  --prefill http://10.0.1.5:8001 \
  --prefill http://10.0.1.5:8002 \
  --prefill http://10.0.1.5:8003 \
  --prefill http://10.0.1.5:8004 \
  --prefill http://10.0.1.5:8005 \
  --prefill http://10.0.1.5:8006 \
  --prefill http://10.0.1.5:8007 \
  --decode http://10.0.2.3:8001 \
  --decode http://10.0.2.3:8002 \
  --decode http://10.0.2.3:8003 \
  --prefill-policy power_of_two \
  --decode-policy power_of_two \
  --kv-connector nixl &

wait
