#!/usr/bin/env bash
# hetplan: vLLM instances on node l40s-01: 2x L40S used of 8 on the node, address 10.0.1.1.
# Plan: scenario assistant-moe, model qwen3-30b-a3b.
# Hosts from the plan's placement (inventory inventories/lab.yaml).
# Run on that node; logs go to ./logs/.
set -euo pipefail

mkdir -p logs

# prefill-L40S-tp1-wfp8-kvfp8-r0: prefill, L40S tp=1 pp=1, GPUs 0, port 8000
env CUDA_VISIBLE_DEVICES=0 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.1.1 VLLM_NIXL_SIDE_CHANNEL_PORT=5600 vllm serve Qwen/Qwen3-30B-A3B \
  --served-model-name qwen3-30b-a3b \
  --host 0.0.0.0 \
  --port 8000 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 1536 \
  --max-num-seqs 8 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' > logs/prefill-L40S-tp1-wfp8-kvfp8-r0.node0.log 2>&1 &

# prefill-L40S-tp1-wfp8-kvfp8-r1: prefill, L40S tp=1 pp=1, GPUs 1, port 8001
env CUDA_VISIBLE_DEVICES=1 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.1.1 VLLM_NIXL_SIDE_CHANNEL_PORT=5601 vllm serve Qwen/Qwen3-30B-A3B \
  --served-model-name qwen3-30b-a3b \
  --host 0.0.0.0 \
  --port 8001 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 1536 \
  --max-num-seqs 8 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' > logs/prefill-L40S-tp1-wfp8-kvfp8-r1.node0.log 2>&1 &

wait
