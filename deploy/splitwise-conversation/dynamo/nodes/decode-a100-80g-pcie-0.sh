#!/usr/bin/env bash
# hetplan: Dynamo vLLM workers on node decode-a100-80g-pcie-0.
# Needs Dynamo's discovery (etcd) reachable; see README.md.
set -euo pipefail

mkdir -p logs

# decode-A100-80G-PCIe-tp4-wbf16-kvbf16-r0: decode, A100-80G-PCIe tp=4
env CUDA_VISIBLE_DEVICES=0,1,2,3 VLLM_NIXL_SIDE_CHANNEL_HOST=decode-a100-80g-pcie-0 VLLM_NIXL_SIDE_CHANNEL_PORT=5600 python3 -m dynamo.vllm \
  --model meta-llama/Llama-3.1-70B-Instruct \
  --served-model-name llama-3.1-70b \
  --tensor-parallel-size 4 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype auto \
  --max-model-len 15360 \
  --max-num-seqs 126 \
  --max-num-batched-tokens 256 \
  --gpu-memory-utilization 0.9 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' \
  --disaggregation-mode decode > logs/decode-A100-80G-PCIe-tp4-wbf16-kvbf16-r0.log 2>&1 &

wait
