#!/usr/bin/env bash
# hetplan: replay the plan's classes against the router with vLLM's benchmark (vllm bench serve).
# Each class runs at its planned rate, all classes at once; then read the results back:
#   hetplan calibrate import-bench results/*.json
set -euo pipefail

mkdir -p results

# class in1024-1024_out256-256: served by colocated-B200-tp1-wfp8-kvfp8 (B200 tp=1, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model qwen3-30b-a3b \
  --tokenizer Qwen/Qwen3-30B-A3B \
  --dataset-name random \
  --random-input-len 1024 \
  --random-output-len 256 \
  --random-range-ratio '{"input":0.0,"output":0.0}' \
  --ignore-eos \
  --num-prompts 6049 \
  --request-rate 50.4003 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in1024-1024_out256-256.json \
  --metadata hetplan_model=qwen3-30b-a3b hetplan_class=in1024-1024_out256-256 hetplan_gpu=B200 hetplan_tp=1 hetplan_pools=colocated-B200-tp1-wfp8-kvfp8:B200:tp1:1 > results/bench-in1024-1024_out256-256.log 2>&1 &

wait
