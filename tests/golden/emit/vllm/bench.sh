#!/usr/bin/env bash
# hetplan: replay the plan's classes against the router with vLLM's benchmark (vllm bench serve).
# Each class runs at its planned rate, all classes at once; then read the results back:
#   hetplan calibrate import-bench results/*.json
set -euo pipefail

mkdir -p results

# class short: served by decode-H100-SXM-tp2-wbf16-kvfp8 (H100-SXM tp=2, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-8b \
  --tokenizer meta-llama/Llama-3.1-8B-Instruct \
  --dataset-name random \
  --random-input-len 500 \
  --random-output-len 200 \
  --random-range-ratio '{"input":0.95,"output":0.95}' \
  --ignore-eos \
  --num-prompts 960 \
  --request-rate 8 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-short.json \
  --metadata hetplan_model=llama-3.1-8b hetplan_class=short hetplan_gpu=H100-SXM hetplan_tp=2 hetplan_pools=decode-H100-SXM-tp2-wbf16-kvfp8:H100-SXM:tp2:1 > results/bench-short.log 2>&1 &

# class long: served by decode-H100-SXM-tp2-wbf16-kvfp8 (H100-SXM tp=2, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-8b \
  --tokenizer meta-llama/Llama-3.1-8B-Instruct \
  --dataset-name random \
  --random-input-len 4000 \
  --random-output-len 400 \
  --random-range-ratio '{"input":0.744,"output":0.95}' \
  --ignore-eos \
  --num-prompts 240 \
  --request-rate 2 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-long.json \
  --metadata hetplan_model=llama-3.1-8b hetplan_class=long hetplan_gpu=H100-SXM hetplan_tp=2 hetplan_pools=decode-H100-SXM-tp2-wbf16-kvfp8:H100-SXM:tp2:1 > results/bench-long.log 2>&1 &

wait
