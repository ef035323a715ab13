#!/usr/bin/env bash
# hetplan: vLLM instances on node prefill-h100-sxm-0: 6x H100-SXM (a node with at least 6; up to 8 per node), address prefill-h100-sxm-0.
# Plan: scenario mooncake, model llama-3.1-70b.
# Host names are placeholders hetplan chose (the plan has no placement): make
# each name in hosts.txt resolve to a real node (DNS or /etc/hosts), or edit it.
# Run on that node; logs go to ./logs/.
set -euo pipefail

mkdir -p logs

# prefill-H100-SXM-tp2-wfp8-kvfp8-r0: prefill, H100-SXM tp=2 pp=1, GPUs 0,1, port 8000
env CUDA_VISIBLE_DEVICES=0,1 VLLM_NIXL_SIDE_CHANNEL_HOST=prefill-h100-sxm-0 VLLM_NIXL_SIDE_CHANNEL_PORT=5600 vllm serve meta-llama/Llama-3.1-70B-Instruct \
  --served-model-name llama-3.1-70b \
  --host 0.0.0.0 \
  --port 8000 \
  --tensor-parallel-size 2 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 16640 \
  --max-num-seqs 11 \
  --max-num-batched-tokens 12032 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' > logs/prefill-H100-SXM-tp2-wfp8-kvfp8-r0.node0.log 2>&1 &

# prefill-H100-SXM-tp2-wfp8-kvfp8-r1: prefill, H100-SXM tp=2 pp=1, GPUs 2,3, port 8001
env CUDA_VISIBLE_DEVICES=2,3 VLLM_NIXL_SIDE_CHANNEL_HOST=prefill-h100-sxm-0 VLLM_NIXL_SIDE_CHANNEL_PORT=5601 vllm serve meta-llama/Llama-3.1-70B-Instruct \
  --served-model-name llama-3.1-70b \
  --host 0.0.0.0 \
  --port 8001 \
  --tensor-parallel-size 2 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 16640 \
  --max-num-seqs 11 \
  --max-num-batched-tokens 12032 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' > logs/prefill-H100-SXM-tp2-wfp8-kvfp8-r1.node0.log 2>&1 &

# prefill-H100-SXM-tp2-wfp8-kvfp8-r2: prefill, H100-SXM tp=2 pp=1, GPUs 4,5, port 8002
env CUDA_VISIBLE_DEVICES=4,5 VLLM_NIXL_SIDE_CHANNEL_HOST=prefill-h100-sxm-0 VLLM_NIXL_SIDE_CHANNEL_PORT=5602 vllm serve meta-llama/Llama-3.1-70B-Instruct \
  --served-model-name llama-3.1-70b \
  --host 0.0.0.0 \
  --port 8002 \
  --tensor-parallel-size 2 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 16640 \
  --max-num-seqs 11 \
  --max-num-batched-tokens 12032 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' > logs/prefill-H100-SXM-tp2-wfp8-kvfp8-r2.node0.log 2>&1 &

wait
