#!/usr/bin/env bash
# hetplan: vLLM instances on node h100-04: 8x H100-SXM used of 8 on the node, address 10.0.2.4.
# Plan: scenario router-8b, model llama-3.1-8b.
# Hosts from the plan's placement (inventory inventories/lab.yaml).
# Run on that node; logs go to ./logs/.
set -euo pipefail

mkdir -p logs

# prefill-H100-SXM-tp1-wfp8-kvfp8-r1: prefill, H100-SXM tp=1 pp=1, GPUs 0, port 8000
env CUDA_VISIBLE_DEVICES=0 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.2.4 VLLM_NIXL_SIDE_CHANNEL_PORT=5600 vllm serve meta-llama/Llama-3.1-8B-Instruct \
  --served-model-name llama-3.1-8b \
  --host 0.0.0.0 \
  --port 8000 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 768 \
  --max-num-seqs 16 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' > logs/prefill-H100-SXM-tp1-wfp8-kvfp8-r1.node0.log 2>&1 &

# prefill-H100-SXM-tp1-wfp8-kvfp8-r2: prefill, H100-SXM tp=1 pp=1, GPUs 1, port 8001
env CUDA_VISIBLE_DEVICES=1 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.2.4 VLLM_NIXL_SIDE_CHANNEL_PORT=5601 vllm serve meta-llama/Llama-3.1-8B-Instruct \
  --served-model-name llama-3.1-8b \
  --host 0.0.0.0 \
  --port 8001 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 768 \
  --max-num-seqs 16 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' > logs/prefill-H100-SXM-tp1-wfp8-kvfp8-r2.node0.log 2>&1 &

# prefill-H100-SXM-tp1-wfp8-kvfp8-r3: prefill, H100-SXM tp=1 pp=1, GPUs 2, port 8002
env CUDA_VISIBLE_DEVICES=2 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.2.4 VLLM_NIXL_SIDE_CHANNEL_PORT=5602 vllm serve meta-llama/Llama-3.1-8B-Instruct \
  --served-model-name llama-3.1-8b \
  --host 0.0.0.0 \
  --port 8002 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 768 \
  --max-num-seqs 16 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' > logs/prefill-H100-SXM-tp1-wfp8-kvfp8-r3.node0.log 2>&1 &

# prefill-H100-SXM-tp1-wfp8-kvfp8-r4: prefill, H100-SXM tp=1 pp=1, GPUs 3, port 8003
env CUDA_VISIBLE_DEVICES=3 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.2.4 VLLM_NIXL_SIDE_CHANNEL_PORT=5603 vllm serve meta-llama/Llama-3.1-8B-Instruct \
  --served-model-name llama-3.1-8b \
  --host 0.0.0.0 \
  --port 8003 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 768 \
  --max-num-seqs 16 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' > logs/prefill-H100-SXM-tp1-wfp8-kvfp8-r4.node0.log 2>&1 &

# prefill-H100-SXM-tp1-wfp8-kvfp8-r5: prefill, H100-SXM tp=1 pp=1, GPUs 4, port 8004
env CUDA_VISIBLE_DEVICES=4 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.2.4 VLLM_NIXL_SIDE_CHANNEL_PORT=5604 vllm serve meta-llama/Llama-3.1-8B-Instruct \
  --served-model-name llama-3.1-8b \
  --host 0.0.0.0 \
  --port 8004 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 768 \
  --max-num-seqs 16 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' > logs/prefill-H100-SXM-tp1-wfp8-kvfp8-r5.node0.log 2>&1 &

# prefill-H100-SXM-tp1-wfp8-kvfp8-r6: prefill, H100-SXM tp=1 pp=1, GPUs 5, port 8005
env CUDA_VISIBLE_DEVICES=5 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.2.4 VLLM_NIXL_SIDE_CHANNEL_PORT=5605 vllm serve meta-llama/Llama-3.1-8B-Instruct \
  --served-model-name llama-3.1-8b \
  --host 0.0.0.0 \
  --port 8005 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 768 \
  --max-num-seqs 16 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' > logs/prefill-H100-SXM-tp1-wfp8-kvfp8-r6.node0.log 2>&1 &

# prefill-H100-SXM-tp1-wfp8-kvfp8-r7: prefill, H100-SXM tp=1 pp=1, GPUs 6, port 8006
env CUDA_VISIBLE_DEVICES=6 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.2.4 VLLM_NIXL_SIDE_CHANNEL_PORT=5606 vllm serve meta-llama/Llama-3.1-8B-Instruct \
  --served-model-name llama-3.1-8b \
  --host 0.0.0.0 \
  --port 8006 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 768 \
  --max-num-seqs 16 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' > logs/prefill-H100-SXM-tp1-wfp8-kvfp8-r7.node0.log 2>&1 &

# prefill-H100-SXM-tp1-wfp8-kvfp8-r8: prefill, H100-SXM tp=1 pp=1, GPUs 7, port 8007
env CUDA_VISIBLE_DEVICES=7 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.2.4 VLLM_NIXL_SIDE_CHANNEL_PORT=5607 vllm serve meta-llama/Llama-3.1-8B-Instruct \
  --served-model-name llama-3.1-8b \
  --host 0.0.0.0 \
  --port 8007 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 768 \
  --max-num-seqs 16 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' > logs/prefill-H100-SXM-tp1-wfp8-kvfp8-r8.node0.log 2>&1 &

wait
