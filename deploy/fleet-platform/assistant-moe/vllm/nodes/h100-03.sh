#!/usr/bin/env bash
# hetplan: vLLM instances on node h100-03: 1x H100-SXM used of 8 on the node, address 10.0.2.3.
# Plan: scenario assistant-moe, model qwen3-30b-a3b.
# Hosts from the plan's placement (inventory inventories/lab.yaml).
# Run on that node; logs go to ./logs/.
set -euo pipefail

mkdir -p logs

# decode-H100-SXM-tp1-wfp8-kvfp8-r0: decode, H100-SXM tp=1 pp=1, GPUs 6, port 8000
env CUDA_VISIBLE_DEVICES=6 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.2.3 VLLM_NIXL_SIDE_CHANNEL_PORT=5600 vllm serve Qwen/Qwen3-30B-A3B \
  --served-model-name qwen3-30b-a3b \
  --host 0.0.0.0 \
  --port 8000 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 1536 \
  --max-num-seqs 512 \
  --max-num-batched-tokens 512 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' > logs/decode-H100-SXM-tp1-wfp8-kvfp8-r0.node0.log 2>&1 &

wait
