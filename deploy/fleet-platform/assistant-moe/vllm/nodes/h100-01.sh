#!/usr/bin/env bash
# hetplan: vLLM instances on node h100-01: 2x H100-SXM used of 8 on the node, address 10.0.2.1.
# Plan: scenario assistant-moe, model qwen3-30b-a3b.
# Hosts from the plan's placement (inventory inventories/lab.yaml).
# Run on that node; logs go to ./logs/.
set -euo pipefail

mkdir -p logs

# colocated-H100-SXM-tp2-wfp8-kvfp8-ep2-r0: colocated, H100-SXM tp=2 pp=1 ep, GPUs 0,1, port 8000
env CUDA_VISIBLE_DEVICES=0,1 vllm serve Qwen/Qwen3-30B-A3B \
  --served-model-name qwen3-30b-a3b \
  --host 0.0.0.0 \
  --port 8000 \
  --tensor-parallel-size 2 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 1536 \
  --max-num-seqs 713 \
  --max-num-batched-tokens 3584 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --enable-expert-parallel > logs/colocated-H100-SXM-tp2-wfp8-kvfp8-ep2-r0.node0.log 2>&1 &

wait
