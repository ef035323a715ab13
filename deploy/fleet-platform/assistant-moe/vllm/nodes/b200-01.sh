#!/usr/bin/env bash
# hetplan: vLLM instances on node b200-01: 1x B200 used of 8 on the node, address b200-01.
# Plan: scenario assistant-moe, model qwen3-30b-a3b.
# Hosts from the plan's placement (inventory inventories/lab.yaml).
# Run on that node; logs go to ./logs/.
set -euo pipefail

mkdir -p logs

# colocated-B200-tp1-wfp8-kvfp8-r0: colocated, B200 tp=1 pp=1, GPUs 0, port 8000
env CUDA_VISIBLE_DEVICES=0 vllm serve Qwen/Qwen3-30B-A3B \
  --served-model-name qwen3-30b-a3b \
  --host 0.0.0.0 \
  --port 8000 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 1536 \
  --max-num-seqs 891 \
  --max-num-batched-tokens 4608 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 > logs/colocated-B200-tp1-wfp8-kvfp8-r0.node0.log 2>&1 &

wait
