#!/usr/bin/env bash
# hetplan: vLLM instances on node prefill-h100-sxm-1: 8x H100-SXM (a node with at least 8; up to 8 per node), address prefill-h100-sxm-1.
# Plan: scenario mooncake, model llama-3.1-70b.
# Host names are placeholders hetplan chose (the plan has no placement): make
# each name in hosts.txt resolve to a real node (DNS or /etc/hosts), or edit it.
# Run on that node; logs go to ./logs/.
set -euo pipefail

mkdir -p logs

# prefill-H100-SXM-tp8-wfp8-kvfp8-r0: prefill, H100-SXM tp=8 pp=1, GPUs 0,1,2,3,4,5,6,7, port 8000
env CUDA_VISIBLE_DEVICES=0,1,2,3,4,5,6,7 VLLM_NIXL_SIDE_CHANNEL_HOST=prefill-h100-sxm-1 VLLM_NIXL_SIDE_CHANNEL_PORT=5600 vllm serve meta-llama/Llama-3.1-70B-Instruct \
  --served-model-name llama-3.1-70b \
  --host 0.0.0.0 \
  --port 8000 \
  --tensor-parallel-size 8 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 131072 \
  --max-num-seqs 1 \
  --max-num-batched-tokens 131072 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' > logs/prefill-H100-SXM-tp8-wfp8-kvfp8-r0.node0.log 2>&1 &

wait
