#!/usr/bin/env bash
# hetplan: vLLM instances on node b200-01: 1x B200 used of 8 on the node, address b200-01.
# Plan: scenario coder-32b, model qwen3-32b.
# Hosts from the plan's placement (inventory inventories/lab.yaml).
# Run on that node; logs go to ./logs/.
set -euo pipefail

mkdir -p logs

# decode-B200-tp1-wfp8-kvfp8-r0: decode, B200 tp=1 pp=1, GPUs 1, port 8000
env CUDA_VISIBLE_DEVICES=1 VLLM_NIXL_SIDE_CHANNEL_HOST=b200-01 VLLM_NIXL_SIDE_CHANNEL_PORT=5600 vllm serve Qwen/Qwen3-32B \
  --served-model-name qwen3-32b \
  --host 0.0.0.0 \
  --port 8000 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 4608 \
  --max-num-seqs 201 \
  --max-num-batched-tokens 256 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' > logs/decode-B200-tp1-wfp8-kvfp8-r0.node0.log 2>&1 &

wait
