#!/usr/bin/env bash
# hetplan: replay the plan's classes against the router with vLLM's benchmark (vllm bench serve).
# Each class runs at its planned rate, all classes at once; then read the results back:
#   hetplan calibrate import-bench results/*.json
set -euo pipefail

mkdir -p results

# class in48-257_out1-11: served by decode-H100-SXM-tp2-wfp8-kvfp8 (H100-SXM tp=2, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 186 \
  --random-output-len 6 \
  --random-range-ratio '{"input":0.384,"output":0.833}' \
  --ignore-eos \
  --num-prompts 14 \
  --request-rate 0.110976 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in48-257_out1-11.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in48-257_out1-11 hetplan_gpu=H100-SXM hetplan_tp=2 hetplan_pools=decode-H100-SXM-tp2-wfp8-kvfp8:H100-SXM:tp2:1 > results/bench-in48-257_out1-11.log 2>&1 &

# class in48-257_out12-152: served by decode-H100-SXM-tp2-wfp8-kvfp8 (H100-SXM tp=2, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 180 \
  --random-output-len 33 \
  --random-range-ratio '{"input":0.431,"output":0.633}' \
  --ignore-eos \
  --num-prompts 17 \
  --request-rate 0.13761 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in48-257_out12-152.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in48-257_out12-152 hetplan_gpu=H100-SXM hetplan_tp=2 hetplan_pools=decode-H100-SXM-tp2-wfp8-kvfp8:H100-SXM:tp2:1 > results/bench-in48-257_out12-152.log 2>&1 &

# class in48-257_out153-1899: served by decode-H100-SXM-tp2-wfp8-kvfp8 (H100-SXM tp=2, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 132 \
  --random-output-len 290 \
  --random-range-ratio '{"input":0.635,"output":0.473}' \
  --ignore-eos \
  --num-prompts 1 \
  --request-rate 0.00148 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in48-257_out153-1899.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in48-257_out153-1899 hetplan_gpu=H100-SXM hetplan_tp=2 hetplan_pools=decode-H100-SXM-tp2-wfp8-kvfp8:H100-SXM:tp2:1 > results/bench-in48-257_out153-1899.log 2>&1 &

# class in258-1384_out1-11: served by decode-H100-SXM-tp2-wfp8-kvfp8 (H100-SXM tp=2, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 792 \
  --random-output-len 6 \
  --random-range-ratio '{"input":0.674,"output":0.823}' \
  --ignore-eos \
  --num-prompts 164 \
  --request-rate 1.36426 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in258-1384_out1-11.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in258-1384_out1-11 hetplan_gpu=H100-SXM hetplan_tp=2 hetplan_pools=decode-H100-SXM-tp2-wfp8-kvfp8:H100-SXM:tp2:1 > results/bench-in258-1384_out1-11.log 2>&1 &

# class in258-1384_out12-152: served by decode-H100-SXM-tp2-wfp8-kvfp8 (H100-SXM tp=2, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 794 \
  --random-output-len 35 \
  --random-range-ratio '{"input":0.675,"output":0.658}' \
  --ignore-eos \
  --num-prompts 183 \
  --request-rate 1.52111 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in258-1384_out12-152.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in258-1384_out12-152 hetplan_gpu=H100-SXM hetplan_tp=2 hetplan_pools=decode-H100-SXM-tp2-wfp8-kvfp8:H100-SXM:tp2:1 > results/bench-in258-1384_out12-152.log 2>&1 &

# class in258-1384_out153-1899: served by decode-H100-SXM-tp2-wfp8-kvfp8 (H100-SXM tp=2, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 803 \
  --random-output-len 313 \
  --random-range-ratio '{"input":0.679,"output":0.51}' \
  --ignore-eos \
  --num-prompts 6 \
  --request-rate 0.04735 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in258-1384_out153-1899.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in258-1384_out153-1899 hetplan_gpu=H100-SXM hetplan_tp=2 hetplan_pools=decode-H100-SXM-tp2-wfp8-kvfp8:H100-SXM:tp2:1 > results/bench-in258-1384_out153-1899.log 2>&1 &

# class in1385-7437_out1-11: served by decode-H100-SXM-tp2-wfp8-kvfp8 (H100-SXM tp=2, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 3464 \
  --random-output-len 6 \
  --random-range-ratio '{"input":0.6,"output":0.825}' \
  --ignore-eos \
  --num-prompts 198 \
  --request-rate 1.64984 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in1385-7437_out1-11.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in1385-7437_out1-11 hetplan_gpu=H100-SXM hetplan_tp=2 hetplan_pools=decode-H100-SXM-tp2-wfp8-kvfp8:H100-SXM:tp2:1 > results/bench-in1385-7437_out1-11.log 2>&1 &

# class in1385-7437_out12-152: served by decode-H100-SXM-tp2-wfp8-kvfp8 (H100-SXM tp=2, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 3438 \
  --random-output-len 35 \
  --random-range-ratio '{"input":0.597,"output":0.654}' \
  --ignore-eos \
  --num-prompts 235 \
  --request-rate 1.95613 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in1385-7437_out12-152.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in1385-7437_out12-152 hetplan_gpu=H100-SXM hetplan_tp=2 hetplan_pools=decode-H100-SXM-tp2-wfp8-kvfp8:H100-SXM:tp2:1 > results/bench-in1385-7437_out12-152.log 2>&1 &

# class in1385-7437_out153-1899: served by decode-H100-SXM-tp2-wfp8-kvfp8 (H100-SXM tp=2, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 3566 \
  --random-output-len 246 \
  --random-range-ratio '{"input":0.612,"output":0.379}' \
  --ignore-eos \
  --num-prompts 6 \
  --request-rate 0.049569 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in1385-7437_out153-1899.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in1385-7437_out153-1899 hetplan_gpu=H100-SXM hetplan_tp=2 hetplan_pools=decode-H100-SXM-tp2-wfp8-kvfp8:H100-SXM:tp2:1 > results/bench-in1385-7437_out153-1899.log 2>&1 &

wait
