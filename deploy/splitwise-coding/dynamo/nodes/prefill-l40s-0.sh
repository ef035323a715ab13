#!/usr/bin/env bash
# hetplan: Dynamo vLLM workers on node prefill-l40s-0.
# Needs Dynamo's discovery (etcd) reachable; see README.md.
set -euo pipefail

mkdir -p logs

# prefill-L40S-tp2-wfp8-kvfp8-r0: prefill, L40S tp=2
env CUDA_VISIBLE_DEVICES=0,1 VLLM_NIXL_SIDE_CHANNEL_HOST=prefill-l40s-0 VLLM_NIXL_SIDE_CHANNEL_PORT=5600 python3 -m dynamo.vllm \
  --model meta-llama/Llama-3.1-70B-Instruct \
  --served-model-name llama-3.1-70b \
  --tensor-parallel-size 2 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 1792 \
  --max-num-seqs 5 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' \
  --disaggregation-mode prefill > logs/prefill-L40S-tp2-wfp8-kvfp8-r0.log 2>&1 &

# prefill-L40S-tp2-wfp8-kvfp8-r1: prefill, L40S tp=2
env CUDA_VISIBLE_DEVICES=2,3 VLLM_NIXL_SIDE_CHANNEL_HOST=prefill-l40s-0 VLLM_NIXL_SIDE_CHANNEL_PORT=5601 python3 -m dynamo.vllm \
  --model meta-llama/Llama-3.1-70B-Instruct \
  --served-model-name llama-3.1-70b \
  --tensor-parallel-size 2 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 1792 \
  --max-num-seqs 5 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' \
  --disaggregation-mode prefill > logs/prefill-L40S-tp2-wfp8-kvfp8-r1.log 2>&1 &

wait
