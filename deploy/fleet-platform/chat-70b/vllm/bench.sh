#!/usr/bin/env bash
# hetplan: replay the plan's classes against the router with vLLM's benchmark (vllm bench serve).
# Each class runs at its planned rate, all classes at once; then read the results back:
#   hetplan calibrate import-bench results/*.json
set -euo pipefail

mkdir -p results

# class in256-256_out512-512: served by colocated-H100-SXM-tp2-wfp8-kvfp8 (H100-SXM tp=2, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 256 \
  --random-output-len 512 \
  --random-range-ratio '{"input":0.0,"output":0.0}' \
  --ignore-eos \
  --num-prompts 18112 \
  --request-rate 150.933 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in256-256_out512-512.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in256-256_out512-512 hetplan_gpu=H100-SXM hetplan_tp=2 hetplan_pools=colocated-H100-SXM-tp2-wfp8-kvfp8:H100-SXM:tp2:1 > results/bench-in256-256_out512-512.log 2>&1 &

wait
