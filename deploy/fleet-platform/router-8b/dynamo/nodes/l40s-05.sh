#!/usr/bin/env bash
# hetplan: Dynamo vLLM workers on node l40s-05.
# Needs Dynamo's discovery (etcd) reachable; see README.md.
set -euo pipefail

mkdir -p logs

# prefill-L40S-tp1-wfp8-kvfp8-r20: prefill, L40S tp=1
env CUDA_VISIBLE_DEVICES=0 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.1.5 VLLM_NIXL_SIDE_CHANNEL_PORT=5600 python3 -m dynamo.vllm \
  --model meta-llama/Llama-3.1-8B-Instruct \
  --served-model-name llama-3.1-8b \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 768 \
  --max-num-seqs 5 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' \
  --disaggregation-mode prefill > logs/prefill-L40S-tp1-wfp8-kvfp8-r20.log 2>&1 &

# prefill-L40S-tp1-wfp8-kvfp8-r21: prefill, L40S tp=1
env CUDA_VISIBLE_DEVICES=1 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.1.5 VLLM_NIXL_SIDE_CHANNEL_PORT=5601 python3 -m dynamo.vllm \
  --model meta-llama/Llama-3.1-8B-Instruct \
  --served-model-name llama-3.1-8b \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 768 \
  --max-num-seqs 5 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' \
  --disaggregation-mode prefill > logs/prefill-L40S-tp1-wfp8-kvfp8-r21.log 2>&1 &

# prefill-L40S-tp1-wfp8-kvfp8-r22: prefill, L40S tp=1
env CUDA_VISIBLE_DEVICES=2 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.1.5 VLLM_NIXL_SIDE_CHANNEL_PORT=5602 python3 -m dynamo.vllm \
  --model meta-llama/Llama-3.1-8B-Instruct \
  --served-model-name llama-3.1-8b \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 768 \
  --max-num-seqs 5 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' \
  --disaggregation-mode prefill > logs/prefill-L40S-tp1-wfp8-kvfp8-r22.log 2>&1 &

# prefill-L40S-tp1-wfp8-kvfp8-r23: prefill, L40S tp=1
env CUDA_VISIBLE_DEVICES=3 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.1.5 VLLM_NIXL_SIDE_CHANNEL_PORT=5603 python3 -m dynamo.vllm \
  --model meta-llama/Llama-3.1-8B-Instruct \
  --served-model-name llama-3.1-8b \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 768 \
  --max-num-seqs 5 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' \
  --disaggregation-mode prefill > logs/prefill-L40S-tp1-wfp8-kvfp8-r23.log 2>&1 &

# prefill-L40S-tp1-wfp8-kvfp8-r24: prefill, L40S tp=1
env CUDA_VISIBLE_DEVICES=4 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.1.5 VLLM_NIXL_SIDE_CHANNEL_PORT=5604 python3 -m dynamo.vllm \
  --model meta-llama/Llama-3.1-8B-Instruct \
  --served-model-name llama-3.1-8b \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 768 \
  --max-num-seqs 5 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' \
  --disaggregation-mode prefill > logs/prefill-L40S-tp1-wfp8-kvfp8-r24.log 2>&1 &

# prefill-L40S-tp1-wfp8-kvfp8-r25: prefill, L40S tp=1
env CUDA_VISIBLE_DEVICES=5 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.1.5 VLLM_NIXL_SIDE_CHANNEL_PORT=5605 python3 -m dynamo.vllm \
  --model meta-llama/Llama-3.1-8B-Instruct \
  --served-model-name llama-3.1-8b \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 768 \
  --max-num-seqs 5 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' \
  --disaggregation-mode prefill > logs/prefill-L40S-tp1-wfp8-kvfp8-r25.log 2>&1 &

# prefill-L40S-tp1-wfp8-kvfp8-r26: prefill, L40S tp=1
env CUDA_VISIBLE_DEVICES=6 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.1.5 VLLM_NIXL_SIDE_CHANNEL_PORT=5606 python3 -m dynamo.vllm \
  --model meta-llama/Llama-3.1-8B-Instruct \
  --served-model-name llama-3.1-8b \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 768 \
  --max-num-seqs 5 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' \
  --disaggregation-mode prefill > logs/prefill-L40S-tp1-wfp8-kvfp8-r26.log 2>&1 &

# prefill-L40S-tp1-wfp8-kvfp8-r27: prefill, L40S tp=1
env CUDA_VISIBLE_DEVICES=7 VLLM_NIXL_SIDE_CHANNEL_HOST=10.0.1.5 VLLM_NIXL_SIDE_CHANNEL_PORT=5607 python3 -m dynamo.vllm \
  --model meta-llama/Llama-3.1-8B-Instruct \
  --served-model-name llama-3.1-8b \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 768 \
  --max-num-seqs 5 \
  --max-num-batched-tokens 8192 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 \
  --kv-transfer-config '{"kv_connector":"NixlConnector","kv_role":"kv_both"}' \
  --disaggregation-mode prefill > logs/prefill-L40S-tp1-wfp8-kvfp8-r27.log 2>&1 &

wait
