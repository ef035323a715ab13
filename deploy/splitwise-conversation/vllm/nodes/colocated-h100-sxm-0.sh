#!/usr/bin/env bash
# hetplan: vLLM instances on node colocated-h100-sxm-0: 6x H100-SXM (a node with at least 6; up to 8 per node), address colocated-h100-sxm-0.
# Plan: scenario splitwise-conversation, model llama-3.1-70b.
# Host names are placeholders hetplan chose (the plan has no placement): make
# each name in hosts.txt resolve to a real node (DNS or /etc/hosts), or edit it.
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
  --max-model-len 3328 \
  --max-num-seqs 97 \
  --max-num-batched-tokens 512 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 > logs/colocated-H100-SXM-tp2-wfp8-kvfp8-r0.node0.log 2>&1 &

# colocated-H100-SXM-tp4-wfp8-kvfp8-r0: colocated, H100-SXM tp=4 pp=1, GPUs 2,3,4,5, port 8001
env CUDA_VISIBLE_DEVICES=2,3,4,5 vllm serve meta-llama/Llama-3.1-70B-Instruct \
  --served-model-name llama-3.1-70b \
  --host 0.0.0.0 \
  --port 8001 \
  --tensor-parallel-size 4 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 15360 \
  --max-num-seqs 293 \
  --max-num-batched-tokens 768 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 > logs/colocated-H100-SXM-tp4-wfp8-kvfp8-r0.node0.log 2>&1 &

wait
