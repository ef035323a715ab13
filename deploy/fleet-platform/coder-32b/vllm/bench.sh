#!/usr/bin/env bash
# hetplan: replay the plan's classes against the router with vLLM's benchmark (vllm bench serve).
# Each class runs at its planned rate, all classes at once; then read the results back:
#   hetplan calibrate import-bench results/*.json
set -euo pipefail

mkdir -p results

# class in4096-4096_out256-256: served by decode-B200-tp1-wfp8-kvfp8 (B200 tp=1, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model qwen3-32b \
  --tokenizer Qwen/Qwen3-32B \
  --dataset-name random \
  --random-input-len 4096 \
  --random-output-len 256 \
  --random-range-ratio '{"input":0.0,"output":0.0}' \
  --ignore-eos \
  --num-prompts 1179 \
  --request-rate 9.82296 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in4096-4096_out256-256.json \
  --metadata hetplan_model=qwen3-32b hetplan_class=in4096-4096_out256-256 hetplan_gpu=B200 hetplan_tp=1 hetplan_pools=decode-B200-tp1-wfp8-kvfp8:B200:tp1:1 > results/bench-in4096-4096_out256-256.log 2>&1 &

wait
