#!/usr/bin/env bash
# hetplan: Dynamo vLLM workers on node h100-01.
# Needs Dynamo's discovery (etcd) reachable; see README.md.
set -euo pipefail

mkdir -p logs

# colocated-H100-SXM-tp2-wfp8-kvfp8-ep2-r0: colocated, H100-SXM tp=2 ep
env CUDA_VISIBLE_DEVICES=0,1 python3 -m dynamo.vllm \
  --model Qwen/Qwen3-30B-A3B \
  --served-model-name qwen3-30b-a3b \
  --tensor-parallel-size 2 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 1536 \
  --max-num-seqs 713 \
  --max-num-batched-tokens 3584 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --enable-expert-parallel > logs/colocated-H100-SXM-tp2-wfp8-kvfp8-ep2-r0.log 2>&1 &

wait
