#!/usr/bin/env bash
# hetplan: Dynamo vLLM workers on node b200-01.
# Needs Dynamo's discovery (etcd) reachable; see README.md.
set -euo pipefail

mkdir -p logs

# colocated-B200-tp1-wfp8-kvfp8-r0: colocated, B200 tp=1
env CUDA_VISIBLE_DEVICES=0 python3 -m dynamo.vllm \
  --model Qwen/Qwen3-30B-A3B \
  --served-model-name qwen3-30b-a3b \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 1536 \
  --max-num-seqs 891 \
  --max-num-batched-tokens 4608 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 > logs/colocated-B200-tp1-wfp8-kvfp8-r0.log 2>&1 &

wait
