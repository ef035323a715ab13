#!/usr/bin/env bash
# hetplan: Dynamo vLLM workers on node h100-03.
# Needs Dynamo's discovery (etcd) reachable; see README.md.
set -euo pipefail

mkdir -p logs

# decode-H100-SXM-tp2-wfp8-kvfp8-r6: decode, H100-SXM tp=2
env CUDA_VISIBLE_DEVICES=0,1 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.2.3 VLLM_NIXL_SIDE_CHANNEL_PORT=5600 python3 -m dynamo.vllm \
  --model meta-llama/Llama-3.1-70B-Instruct \
  --served-model-name llama-3.1-70b \
  --tensor-parallel-size 2 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 1024 \
  --max-num-seqs 423 \
  --max-num-batched-tokens 512 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' \
  --disaggregation-mode decode > logs/decode-H100-SXM-tp2-wfp8-kvfp8-r6.log 2>&1 &

# decode-H100-SXM-tp2-wfp8-kvfp8-r7: decode, H100-SXM tp=2
env CUDA_VISIBLE_DEVICES=2,3 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.2.3 VLLM_NIXL_SIDE_CHANNEL_PORT=5601 python3 -m dynamo.vllm \
  --model meta-llama/Llama-3.1-70B-Instruct \
  --served-model-name llama-3.1-70b \
  --tensor-parallel-size 2 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 1024 \
  --max-num-seqs 423 \
  --max-num-batched-tokens 512 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' \
  --disaggregation-mode decode > logs/decode-H100-SXM-tp2-wfp8-kvfp8-r7.log 2>&1 &

# decode-H100-SXM-tp2-wfp8-kvfp8-r8: decode, H100-SXM tp=2
env CUDA_VISIBLE_DEVICES=4,5 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.2.3 VLLM_NIXL_SIDE_CHANNEL_PORT=5602 python3 -m dynamo.vllm \
  --model meta-llama/Llama-3.1-70B-Instruct \
  --served-model-name llama-3.1-70b \
  --tensor-parallel-size 2 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 1024 \
  --max-num-seqs 423 \
  --max-num-batched-tokens 512 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' \
  --disaggregation-mode decode > logs/decode-H100-SXM-tp2-wfp8-kvfp8-r8.log 2>&1 &

wait
