#!/usr/bin/env bash
# hetplan: vLLM instances on node l40s-05: 8x L40S used of 8 on the node, address 10.0.1.5.
# Plan: scenario router-8b, model llama-3.1-8b.
# Hosts from the plan's placement (inventory inventories/lab.yaml).
# Run on that node; logs go to ./logs/.
set -euo pipefail

mkdir -p logs

# prefill-L40S-tp1-wfp8-kvfp8-r20: prefill, L40S tp=1 pp=1, GPUs 0, port 8000
env CUDA_VISIBLE_DEVICES=0 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.1.5 VLLM_NIXL_SIDE_CHANNEL_PORT=5600 vllm serve meta-llama/Llama-3.1-8B-Instruct \
  --served-model-name llama-3.1-8b \
  --host 0.0.0.0 \
  --port 8000 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 768 \
  --max-num-seqs 5 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' > logs/prefill-L40S-tp1-wfp8-kvfp8-r20.node0.log 2>&1 &

# prefill-L40S-tp1-wfp8-kvfp8-r21: prefill, L40S tp=1 pp=1, GPUs 1, port 8001
env CUDA_VISIBLE_DEVICES=1 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.1.5 VLLM_NIXL_SIDE_CHANNEL_PORT=5601 vllm serve meta-llama/Llama-3.1-8B-Instruct \
  --served-model-name llama-3.1-8b \
  --host 0.0.0.0 \
  --port 8001 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 768 \
  --max-num-seqs 5 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' > logs/prefill-L40S-tp1-wfp8-kvfp8-r21.node0.log 2>&1 &

# prefill-L40S-tp1-wfp8-kvfp8-r22: prefill, L40S tp=1 pp=1, GPUs 2, port 8002
env CUDA_VISIBLE_DEVICES=2 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.1.5 VLLM_NIXL_SIDE_CHANNEL_PORT=5602 vllm serve meta-llama/Llama-3.1-8B-Instruct \
  --served-model-name llama-3.1-8b \
  --host 0.0.0.0 \
  --port 8002 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 768 \
  --max-num-seqs 5 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' > logs/prefill-L40S-tp1-wfp8-kvfp8-r22.node0.log 2>&1 &

# prefill-L40S-tp1-wfp8-kvfp8-r23: prefill, L40S tp=1 pp=1, GPUs 3, port 8003
env CUDA_VISIBLE_DEVICES=3 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.1.5 VLLM_NIXL_SIDE_CHANNEL_PORT=5603 vllm serve meta-llama/Llama-3.1-8B-Instruct \
  --served-model-name llama-3.1-8b \
  --host 0.0.0.0 \
  --port 8003 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 768 \
  --max-num-seqs 5 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' > logs/prefill-L40S-tp1-wfp8-kvfp8-r23.node0.log 2>&1 &

# prefill-L40S-tp1-wfp8-kvfp8-r24: prefill, L40S tp=1 pp=1, GPUs 4, port 8004
env CUDA_VISIBLE_DEVICES=4 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.1.5 VLLM_NIXL_SIDE_CHANNEL_PORT=5604 vllm serve meta-llama/Llama-3.1-8B-Instruct \
  --served-model-name llama-3.1-8b \
  --host 0.0.0.0 \
  --port 8004 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 768 \
  --max-num-seqs 5 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' > logs/prefill-L40S-tp1-wfp8-kvfp8-r24.node0.log 2>&1 &

# prefill-L40S-tp1-wfp8-kvfp8-r25: prefill, L40S tp=1 pp=1, GPUs 5, port 8005
env CUDA_VISIBLE_DEVICES=5 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.1.5 VLLM_NIXL_SIDE_CHANNEL_PORT=5605 vllm serve meta-llama/Llama-3.1-8B-Instruct \
  --served-model-name llama-3.1-8b \
  --host 0.0.0.0 \
  --port 8005 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 768 \
  --max-num-seqs 5 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' > logs/prefill-L40S-tp1-wfp8-kvfp8-r25.node0.log 2>&1 &

# prefill-L40S-tp1-wfp8-kvfp8-r26: prefill, L40S tp=1 pp=1, GPUs 6, port 8006
env CUDA_VISIBLE_DEVICES=6 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.1.5 VLLM_NIXL_SIDE_CHANNEL_PORT=5606 vllm serve meta-llama/Llama-3.1-8B-Instruct \
  --served-model-name llama-3.1-8b \
  --host 0.0.0.0 \
  --port 8006 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 768 \
  --max-num-seqs 5 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' > logs/prefill-L40S-tp1-wfp8-kvfp8-r26.node0.log 2>&1 &

# prefill-L40S-tp1-wfp8-kvfp8-r27: prefill, L40S tp=1 pp=1, GPUs 7, port 8007
env CUDA_VISIBLE_DEVICES=7 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.1.5 VLLM_NIXL_SIDE_CHANNEL_PORT=5607 vllm serve meta-llama/Llama-3.1-8B-Instruct \
  --served-model-name llama-3.1-8b \
  --host 0.0.0.0 \
  --port 8007 \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 768 \
  --max-num-seqs 5 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' > logs/prefill-L40S-tp1-wfp8-kvfp8-r27.node0.log 2>&1 &

wait
