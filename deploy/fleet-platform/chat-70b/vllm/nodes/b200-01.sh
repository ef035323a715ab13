#!/usr/bin/env bash
# hetplan: vLLM instances on node b200-01: 2x B200 used of 8 on the node, address b200-01.
# Plan: scenario chat-70b, model llama-3.1-70b.
# Hosts from the plan's placement (inventory inventories/lab.yaml).
# Run on that node; logs go to ./logs/.
set -euo pipefail

mkdir -p logs

# colocated-B200-tp1-wfp8-kvfp8-r0: colocated, B200 tp=1 pp=1, GPUs 0, port 8000
env CUDA_VISIBLE_DEVICES=0 vllm serve meta-llama/Llama-3.1-70B-Instruct \
  --served-model-name llama-3.1-70b \
  --host 0.0.0.0 \
  --port 8000 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 1024 \
  --max-num-seqs 293 \
  --max-num-batched-tokens 512 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 > logs/colocated-B200-tp1-wfp8-kvfp8-r0.node0.log 2>&1 &

# colocated-B200-tp1-wfp8-kvfp8-r1: colocated, B200 tp=1 pp=1, GPUs 1, port 8001
env CUDA_VISIBLE_DEVICES=1 vllm serve meta-llama/Llama-3.1-70B-Instruct \
  --served-model-name llama-3.1-70b \
  --host 0.0.0.0 \
  --port 8001 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 1024 \
  --max-num-seqs 293 \
  --max-num-batched-tokens 512 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 > logs/colocated-B200-tp1-wfp8-kvfp8-r1.node0.log 2>&1 &

wait
