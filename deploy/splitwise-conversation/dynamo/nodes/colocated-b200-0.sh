#!/usr/bin/env bash
# hetplan: Dynamo vLLM workers on node colocated-b200-0.
# Needs Dynamo's discovery (etcd) reachable; see README.md.
set -euo pipefail

mkdir -p logs

# colocated-B200-tp2-wfp8-kvbf16-r0: colocated, B200 tp=2
env CUDA_VISIBLE_DEVICES=0,1 python3 -m dynamo.vllm \
  --model meta-llama/Llama-3.1-70B-Instruct \
  --served-model-name llama-3.1-70b \
  --tensor-parallel-size 2 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype auto \
  --max-model-len 15360 \
  --max-num-seqs 457 \
  --max-num-batched-tokens 1280 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 > logs/colocated-B200-tp2-wfp8-kvbf16-r0.log 2>&1 &

wait
