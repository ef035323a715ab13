#!/usr/bin/env bash
# hetplan: vllm-router in front of the plan's instances (pip install vllm-router).
# Policies balance load inside a phase; the plan's class split is not enforced.
set -euo pipefail

# router for the colocated instances
vllm-router \
  --host 0.0.0.0 \
  --port 30000 \
  --policy power_of_two \
  --worker-urls http://h100-s1:8000 http://h100-s1:8001 http://h100-s1:8002 http://h100-s1:8003 http://10.0.2.1:8000 http://10.0.2.1:8001 http://10.0.2.1:8002 http://10.0.2.1:8003 http://10.0.2.2:8000 http://10.0.2.2:8001 http://10.0.2.2:8002 http://10.0.2.2:8003 http://10.0.2.3:8000 http://10.0.2.3:8001 &

wait
