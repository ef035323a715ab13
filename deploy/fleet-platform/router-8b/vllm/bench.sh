#!/usr/bin/env bash
# hetplan: replay the plan's classes against the router with vLLM's benchmark (vllm bench serve).
# Each class runs at its planned rate, all classes at once; then read the results back:
#   hetplan calibrate import-bench results/*.json
set -euo pipefail

mkdir -p results

# class in512-512_out32-32: served by decode-H100-SXM-tp1-wfp8-kvfp8 (H100-SXM tp=1, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-8b \
  --tokenizer meta-llama/Llama-3.1-8B-Instruct \
  --dataset-name random \
  --random-input-len 512 \
  --random-output-len 32 \
  --random-range-ratio '{"input":0.0,"output":0.0}' \
  --ignore-eos \
  --num-prompts 240750 \
  --request-rate 2006.25 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in512-512_out32-32.json \
  --metadata hetplan_model=llama-3.1-8b hetplan_class=in512-512_out32-32 hetplan_gpu=H100-SXM hetplan_tp=1 hetplan_pools=decode-H100-SXM-tp1-wfp8-kvfp8:H100-SXM:tp1:1 > results/bench-in512-512_out32-32.log 2>&1 &

wait
