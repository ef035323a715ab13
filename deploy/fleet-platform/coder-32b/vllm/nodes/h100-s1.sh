#!/usr/bin/env bash
# hetplan: vLLM instances on node h100-s1: 5x H100-SXM used of 8 on the node, address h100-s1.
# Plan: scenario coder-32b, model qwen3-32b.
# Hosts from the plan's placement (inventory inventories/lab.yaml).
# Run on that node; logs go to ./logs/.
set -euo pipefail

mkdir -p logs

# colocated-H100-SXM-tp1-wfp8-kvfp8-r0: colocated, H100-SXM tp=1 pp=1, GPUs 2, port 8000
env CUDA_VISIBLE_DEVICES=2 vllm serve Qwen/Qwen3-32B \
  --served-model-name qwen3-32b \
  --host 0.0.0.0 \
  --port 8000 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 4608 \
  --max-num-seqs 18 \
  --max-num-batched-tokens 512 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 > logs/colocated-H100-SXM-tp1-wfp8-kvfp8-r0.node0.log 2>&1 &

# colocated-H100-SXM-tp1-wfp8-kvfp8-r1: colocated, H100-SXM tp=1 pp=1, GPUs 3, port 8001
env CUDA_VISIBLE_DEVICES=3 vllm serve Qwen/Qwen3-32B \
  --served-model-name qwen3-32b \
  --host 0.0.0.0 \
  --port 8001 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 4608 \
  --max-num-seqs 18 \
  --max-num-batched-tokens 512 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 > logs/colocated-H100-SXM-tp1-wfp8-kvfp8-r1.node0.log 2>&1 &

# colocated-H100-SXM-tp1-wfp8-kvfp8-r2: colocated, H100-SXM tp=1 pp=1, GPUs 4, port 8002
env CUDA_VISIBLE_DEVICES=4 vllm serve Qwen/Qwen3-32B \
  --served-model-name qwen3-32b \
  --host 0.0.0.0 \
  --port 8002 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 4608 \
  --max-num-seqs 18 \
  --max-num-batched-tokens 512 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 > logs/colocated-H100-SXM-tp1-wfp8-kvfp8-r2.node0.log 2>&1 &

# colocated-H100-SXM-tp1-wfp8-kvfp8-r3: colocated, H100-SXM tp=1 pp=1, GPUs 5, port 8003
env CUDA_VISIBLE_DEVICES=5 vllm serve Qwen/Qwen3-32B \
  --served-model-name qwen3-32b \
  --host 0.0.0.0 \
  --port 8003 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 4608 \
  --max-num-seqs 18 \
  --max-num-batched-tokens 512 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 > logs/colocated-H100-SXM-tp1-wfp8-kvfp8-r3.node0.log 2>&1 &

# colocated-H100-SXM-tp1-wfp8-kvfp8-r4: colocated, H100-SXM tp=1 pp=1, GPUs 6, port 8004
env CUDA_VISIBLE_DEVICES=6 vllm serve Qwen/Qwen3-32B \
  --served-model-name qwen3-32b \
  --host 0.0.0.0 \
  --port 8004 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 4608 \
  --max-num-seqs 18 \
  --max-num-batched-tokens 512 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 > logs/colocated-H100-SXM-tp1-wfp8-kvfp8-r4.node0.log 2>&1 &

wait
