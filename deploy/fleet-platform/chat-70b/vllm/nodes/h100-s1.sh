#!/usr/bin/env bash
# hetplan: vLLM instances on node h100-s1: 8x H100-SXM used of 8 on the node, address h100-s1.
# Plan: scenario chat-70b, model llama-3.1-70b.
# Hosts from the plan's placement (inventory inventories/lab.yaml).
# Run on that node; logs go to ./logs/.
set -euo pipefail

mkdir -p logs

# colocated-H100-SXM-tp2-wfp8-kvfp8-r0: colocated, H100-SXM tp=2 pp=1, GPUs 0,1, port 8000
env CUDA_VISIBLE_DEVICES=0,1 vllm serve meta-llama/Llama-3.1-70B-Instruct \
  --served-model-name llama-3.1-70b \
  --host 0.0.0.0 \
  --port 8000 \
  --tensor-parallel-size 2 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 1024 \
  --max-num-seqs 293 \
  --max-num-batched-tokens 512 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 > logs/colocated-H100-SXM-tp2-wfp8-kvfp8-r0.node0.log 2>&1 &

# colocated-H100-SXM-tp2-wfp8-kvfp8-r1: colocated, H100-SXM tp=2 pp=1, GPUs 2,3, port 8001
env CUDA_VISIBLE_DEVICES=2,3 vllm serve meta-llama/Llama-3.1-70B-Instruct \
  --served-model-name llama-3.1-70b \
  --host 0.0.0.0 \
  --port 8001 \
  --tensor-parallel-size 2 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 1024 \
  --max-num-seqs 293 \
  --max-num-batched-tokens 512 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 > logs/colocated-H100-SXM-tp2-wfp8-kvfp8-r1.node0.log 2>&1 &

# colocated-H100-SXM-tp2-wfp8-kvfp8-r2: colocated, H100-SXM tp=2 pp=1, GPUs 4,5, port 8002
env CUDA_VISIBLE_DEVICES=4,5 vllm serve meta-llama/Llama-3.1-70B-Instruct \
  --served-model-name llama-3.1-70b \
  --host 0.0.0.0 \
  --port 8002 \
  --tensor-parallel-size 2 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 1024 \
  --max-num-seqs 293 \
  --max-num-batched-tokens 512 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 > logs/colocated-H100-SXM-tp2-wfp8-kvfp8-r2.node0.log 2>&1 &

# colocated-H100-SXM-tp2-wfp8-kvfp8-r3: colocated, H100-SXM tp=2 pp=1, GPUs 6,7, port 8003
env CUDA_VISIBLE_DEVICES=6,7 vllm serve meta-llama/Llama-3.1-70B-Instruct \
  --served-model-name llama-3.1-70b \
  --host 0.0.0.0 \
  --port 8003 \
  --tensor-parallel-size 2 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 1024 \
  --max-num-seqs 293 \
  --max-num-batched-tokens 512 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 > logs/colocated-H100-SXM-tp2-wfp8-kvfp8-r3.node0.log 2>&1 &

wait
