#!/usr/bin/env bash
# hetplan: Dynamo vLLM workers on node h100-s1.
# Needs Dynamo's discovery (etcd) reachable; see README.md.
set -euo pipefail

mkdir -p logs

# colocated-H100-SXM-tp2-wfp8-kvfp8-r0: colocated, H100-SXM tp=2
env CUDA_VISIBLE_DEVICES=0,1 python3 -m dynamo.vllm \
  --model meta-llama/Llama-3.1-70B-Instruct \
  --served-model-name llama-3.1-70b \
  --tensor-parallel-size 2 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 1024 \
  --max-num-seqs 293 \
  --max-num-batched-tokens 512 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 > logs/colocated-H100-SXM-tp2-wfp8-kvfp8-r0.log 2>&1 &

# colocated-H100-SXM-tp2-wfp8-kvfp8-r1: colocated, H100-SXM tp=2
env CUDA_VISIBLE_DEVICES=2,3 python3 -m dynamo.vllm \
  --model meta-llama/Llama-3.1-70B-Instruct \
  --served-model-name llama-3.1-70b \
  --tensor-parallel-size 2 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 1024 \
  --max-num-seqs 293 \
  --max-num-batched-tokens 512 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 > logs/colocated-H100-SXM-tp2-wfp8-kvfp8-r1.log 2>&1 &

# colocated-H100-SXM-tp2-wfp8-kvfp8-r2: colocated, H100-SXM tp=2
env CUDA_VISIBLE_DEVICES=4,5 python3 -m dynamo.vllm \
  --model meta-llama/Llama-3.1-70B-Instruct \
  --served-model-name llama-3.1-70b \
  --tensor-parallel-size 2 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 1024 \
  --max-num-seqs 293 \
  --max-num-batched-tokens 512 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 > logs/colocated-H100-SXM-tp2-wfp8-kvfp8-r2.log 2>&1 &

# colocated-H100-SXM-tp2-wfp8-kvfp8-r3: colocated, H100-SXM tp=2
env CUDA_VISIBLE_DEVICES=6,7 python3 -m dynamo.vllm \
  --model meta-llama/Llama-3.1-70B-Instruct \
  --served-model-name llama-3.1-70b \
  --tensor-parallel-size 2 \
  --pipeline-parallel-size 1 \
  --dtype bfloat16 \
  --kv-cache-dtype fp8 \
  --max-model-len 1024 \
  --max-num-seqs 293 \
  --max-num-batched-tokens 512 \
  --gpu-memory-utilization 0.9 \
  --quantization fp8 > logs/colocated-H100-SXM-tp2-wfp8-kvfp8-r3.log 2>&1 &

wait
