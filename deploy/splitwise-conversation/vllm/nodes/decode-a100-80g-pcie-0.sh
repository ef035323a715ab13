#!/usr/bin/env bash
# hetplan: vLLM instances on node decode-a100-80g-pcie-0: 4x A100-80G-PCIe (a node with at least 4; up to 8 per node), address decode-a100-80g-pcie-0.
# Plan: scenario splitwise-conversation, model llama-3.1-70b.
# Host names are placeholders hetplan chose (the plan has no placement): make
# each name in hosts.txt resolve to a real node (DNS or /etc/hosts), or edit it.
# Run on that node; logs go to ./logs/.
set -euo pipefail

mkdir -p logs

# decode-A100-80G-PCIe-tp4-wbf16-kvbf16-r0: decode, A100-80G-PCIe tp=4 pp=1, GPUs 0,1,2,3, port 8000
env CUDA_VISIBLE_DEVICES=0,1,2,3 VLLM_NIXL_SIDE_CHANNEL_HOST=decode-a100-80g-pcie-0 VLLM_NIXL_SIDE_CHANNEL_PORT=5600 vllm serve meta-llama/Llama-3.1-70B-Instruct \
  --served-model-name llama-3.1-70b \
  --host 0.0.0.0 \
  --port 8000 \
  --tensor-parallel-size 4 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype auto \
  --max-model-len 15360 \
  --max-num-seqs 126 \
  --max-num-batched-tokens 256 \
  --gpu-memory-utilization 0.9 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' > logs/decode-A100-80G-PCIe-tp4-wbf16-kvbf16-r0.node0.log 2>&1 &

wait
