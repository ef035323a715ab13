#!/usr/bin/env bash
# hetplan: Dynamo vLLM workers on node h100-s1.
# Needs Dynamo's discovery (etcd) reachable; see README.md.
set -euo pipefail

mkdir -p logs

# colocated-H100-SXM-tp1-wfp8-kvfp8-r0: colocated, H100-SXM tp=1
env CUDA_VISIBLE_DEVICES=2 python3 -m dynamo.vllm \
  --model Qwen/Qwen3-32B \
  --served-model-name qwen3-32b \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 4608 \
  --max-num-seqs 18 \
  --max-num-batched-tokens 512 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 > logs/colocated-H100-SXM-tp1-wfp8-kvfp8-r0.log 2>&1 &

# colocated-H100-SXM-tp1-wfp8-kvfp8-r1: colocated, H100-SXM tp=1
env CUDA_VISIBLE_DEVICES=3 python3 -m dynamo.vllm \
  --model Qwen/Qwen3-32B \
  --served-model-name qwen3-32b \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 4608 \
  --max-num-seqs 18 \
  --max-num-batched-tokens 512 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 > logs/colocated-H100-SXM-tp1-wfp8-kvfp8-r1.log 2>&1 &

# colocated-H100-SXM-tp1-wfp8-kvfp8-r2: colocated, H100-SXM tp=1
env CUDA_VISIBLE_DEVICES=4 python3 -m dynamo.vllm \
  --model Qwen/Qwen3-32B \
  --served-model-name qwen3-32b \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 4608 \
  --max-num-seqs 18 \
  --max-num-batched-tokens 512 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 > logs/colocated-H100-SXM-tp1-wfp8-kvfp8-r2.log 2>&1 &

# colocated-H100-SXM-tp1-wfp8-kvfp8-r3: colocated, H100-SXM tp=1
env CUDA_VISIBLE_DEVICES=5 python3 -m dynamo.vllm \
  --model Qwen/Qwen3-32B \
  --served-model-name qwen3-32b \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 4608 \
  --max-num-seqs 18 \
  --max-num-batched-tokens 512 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 > logs/colocated-H100-SXM-tp1-wfp8-kvfp8-r3.log 2>&1 &

# colocated-H100-SXM-tp1-wfp8-kvfp8-r4: colocated, H100-SXM tp=1
env CUDA_VISIBLE_DEVICES=6 python3 -m dynamo.vllm \
  --model Qwen/Qwen3-32B \
  --served-model-name qwen3-32b \
  --tensor-parallel-size 1 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 4608 \
  --max-num-seqs 18 \
  --max-num-batched-tokens 512 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 > logs/colocated-H100-SXM-tp1-wfp8-kvfp8-r4.log 2>&1 &

wait
