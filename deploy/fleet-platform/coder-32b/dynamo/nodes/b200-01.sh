#!/usr/bin/env bash
# hetplan: Dynamo vLLM workers on node b200-01.
# Needs Dynamo's discovery (etcd) reachable; see README.md.
set -euo pipefail

mkdir -p logs

# decode-B200-tp1-wfp8-kvfp8-r0: decode, B200 tp=1
env CUDA_VISIBLE_DEVICES=1 VLLM_NIXL_SIDE_CHANNEL_HOST=b200-01 VLLM_NIXL_SIDE_CHANNEL_PORT=5600 python3 -m dynamo.vllm \
  --model Qwen/Qwen3-32B \
  --served-model-name qwen3-32b \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 4608 \
  --max-num-seqs 201 \
  --max-num-batched-tokens 256 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' \
  --disaggregation-mode decode > logs/decode-B200-tp1-wfp8-kvfp8-r0.log 2>&1 &

wait
