#!/usr/bin/env bash
# hetplan: vLLM instances on node l40s-02: 4x L40S used of 8 on the node, address 10.0.1.2.
# Plan: scenario coder-32b, model qwen3-32b.
# Hosts from the plan's placement (inventory inventories/lab.yaml).
# Run on that node; logs go to ./logs/.
set -euo pipefail

mkdir -p logs

# prefill-L40S-tp1-wfp8-kvfp8-r8: prefill, L40S tp=1 pp=1, GPUs 0, port 8000
env CUDA_VISIBLE_DEVICES=0 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.1.2 VLLM_NIXL_SIDE_CHANNEL_PORT=5600 vllm serve Qwen/Qwen3-32B \
  --served-model-name qwen3-32b \
  --host 0.0.0.0 \
  --port 8000 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 4608 \
  --max-num-seqs 1 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' > logs/prefill-L40S-tp1-wfp8-kvfp8-r8.node0.log 2>&1 &

# prefill-L40S-tp1-wfp8-kvfp8-r9: prefill, L40S tp=1 pp=1, GPUs 1, port 8001
env CUDA_VISIBLE_DEVICES=1 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.1.2 VLLM_NIXL_SIDE_CHANNEL_PORT=5601 vllm serve Qwen/Qwen3-32B \
  --served-model-name qwen3-32b \
  --host 0.0.0.0 \
  --port 8001 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 4608 \
  --max-num-seqs 1 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' > logs/prefill-L40S-tp1-wfp8-kvfp8-r9.node0.log 2>&1 &

# prefill-L40S-tp1-wfp8-kvfp8-r10: prefill, L40S tp=1 pp=1, GPUs 2, port 8002
env CUDA_VISIBLE_DEVICES=2 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.1.2 VLLM_NIXL_SIDE_CHANNEL_PORT=5602 vllm serve Qwen/Qwen3-32B \
  --served-model-name qwen3-32b \
  --host 0.0.0.0 \
  --port 8002 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 4608 \
  --max-num-seqs 1 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' > logs/prefill-L40S-tp1-wfp8-kvfp8-r10.node0.log 2>&1 &

# prefill-L40S-tp1-wfp8-kvfp8-r11: prefill, L40S tp=1 pp=1, GPUs 3, port 8003
env CUDA_VISIBLE_DEVICES=3 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.1.2 VLLM_NIXL_SIDE_CHANNEL_PORT=5603 vllm serve Qwen/Qwen3-32B \
  --served-model-name qwen3-32b \
  --host 0.0.0.0 \
  --port 8003 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 4608 \
  --max-num-seqs 1 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' > logs/prefill-L40S-tp1-wfp8-kvfp8-r11.node0.log 2>&1 &

wait
