#!/usr/bin/env bash
# hetplan: replay the plan's classes against the router with vLLM's benchmark (vllm bench serve).
# Each class runs at its planned rate, all classes at once; then read the results back:
#   hetplan calibrate import-bench results/*.json
set -euo pipefail

mkdir -p results

# class in47-313_out3-20: served by decode-A100-80G-PCIe-tp4-wbf16-kvbf16 (A100-80G-PCIe tp=4, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 203 \
  --random-output-len 16 \
  --random-range-ratio '{"input":0.542,"output":0.252}' \
  --ignore-eos \
  --num-prompts 2 \
  --request-rate 0.011719 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in47-313_out3-20.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in47-313_out3-20 hetplan_gpu=A100-80G-PCIe hetplan_tp=4 hetplan_pools=decode-A100-80G-PCIe-tp4-wbf16-kvbf16:A100-80G-PCIe:tp4:1 > results/bench-in47-313_out3-20.log 2>&1 &

# class in47-313_out21-143: served by decode-A100-80G-PCIe-tp4-wbf16-kvbf16 (A100-80G-PCIe tp=4, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 232 \
  --random-output-len 79 \
  --random-range-ratio '{"input":0.348,"output":0.735}' \
  --ignore-eos \
  --num-prompts 24 \
  --request-rate 0.198291 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in47-313_out21-143.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in47-313_out21-143 hetplan_gpu=A100-80G-PCIe hetplan_tp=4 hetplan_pools=decode-A100-80G-PCIe-tp4-wbf16-kvbf16:A100-80G-PCIe:tp4:1 > results/bench-in47-313_out21-143.log 2>&1 &

# class in47-313_out144-1000: served by decode-A100-80G-PCIe-tp4-wbf16-kvbf16 (A100-80G-PCIe tp=4, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 235 \
  --random-output-len 338 \
  --random-range-ratio '{"input":0.334,"output":0.574}' \
  --ignore-eos \
  --num-prompts 22 \
  --request-rate 0.175471 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in47-313_out144-1000.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in47-313_out144-1000 hetplan_gpu=A100-80G-PCIe hetplan_tp=4 hetplan_pools=decode-A100-80G-PCIe-tp4-wbf16-kvbf16:A100-80G-PCIe:tp4:1 > results/bench-in47-313_out144-1000.log 2>&1 &

# class in314-2100_out3-20: served by decode-A100-80G-PCIe-tp4-wbf16-kvbf16 (A100-80G-PCIe tp=4, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 999 \
  --random-output-len 15 \
  --random-range-ratio '{"input":0.686,"output":0.331}' \
  --ignore-eos \
  --num-prompts 15 \
  --request-rate 0.11842 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in314-2100_out3-20.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in314-2100_out3-20 hetplan_gpu=A100-80G-PCIe hetplan_tp=4 hetplan_pools=decode-A100-80G-PCIe-tp4-wbf16-kvbf16:A100-80G-PCIe:tp4:1 > results/bench-in314-2100_out3-20.log 2>&1 &

# class in314-2100_out21-143: served by decode-A100-80G-PCIe-tp4-wbf16-kvbf16 (A100-80G-PCIe tp=4, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 1009 \
  --random-output-len 78 \
  --random-range-ratio '{"input":0.689,"output":0.731}' \
  --ignore-eos \
  --num-prompts 297 \
  --request-rate 2.46708 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in314-2100_out21-143.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in314-2100_out21-143 hetplan_gpu=A100-80G-PCIe hetplan_tp=4 hetplan_pools=decode-A100-80G-PCIe-tp4-wbf16-kvbf16:A100-80G-PCIe:tp4:1 > results/bench-in314-2100_out21-143.log 2>&1 &

# class in314-2100_out144-1000: served by decode-A100-80G-PCIe-tp4-wbf16-kvbf16 (A100-80G-PCIe tp=4, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 1000 \
  --random-output-len 331 \
  --random-range-ratio '{"input":0.686,"output":0.565}' \
  --ignore-eos \
  --num-prompts 255 \
  --request-rate 2.12261 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in314-2100_out144-1000.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in314-2100_out144-1000 hetplan_gpu=A100-80G-PCIe hetplan_tp=4 hetplan_pools=decode-A100-80G-PCIe-tp4-wbf16-kvbf16:A100-80G-PCIe:tp4:1 > results/bench-in314-2100_out144-1000.log 2>&1 &

# class in2101-14050_out3-20: served by decode-A100-80G-PCIe-tp4-wbf16-kvbf16 (A100-80G-PCIe tp=4, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 3450 \
  --random-output-len 15 \
  --random-range-ratio '{"input":0.391,"output":0.308}' \
  --ignore-eos \
  --num-prompts 3 \
  --request-rate 0.022512 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in2101-14050_out3-20.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in2101-14050_out3-20 hetplan_gpu=A100-80G-PCIe hetplan_tp=4 hetplan_pools=decode-A100-80G-PCIe-tp4-wbf16-kvbf16:A100-80G-PCIe:tp4:1 > results/bench-in2101-14050_out3-20.log 2>&1 &

# class in2101-14050_out21-143: served by decode-A100-80G-PCIe-tp4-wbf16-kvbf16 (A100-80G-PCIe tp=4, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 3394 \
  --random-output-len 80 \
  --random-range-ratio '{"input":0.381,"output":0.736}' \
  --ignore-eos \
  --num-prompts 66 \
  --request-rate 0.54584 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in2101-14050_out21-143.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in2101-14050_out21-143 hetplan_gpu=A100-80G-PCIe hetplan_tp=4 hetplan_pools=decode-A100-80G-PCIe-tp4-wbf16-kvbf16:A100-80G-PCIe:tp4:1 > results/bench-in2101-14050_out21-143.log 2>&1 &

# class in2101-14050_out144-1000: served by decode-A100-80G-PCIe-tp4-wbf16-kvbf16 (A100-80G-PCIe tp=4, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 3466 \
  --random-output-len 332 \
  --random-range-ratio '{"input":0.394,"output":0.566}' \
  --ignore-eos \
  --num-prompts 57 \
  --request-rate 0.473062 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in2101-14050_out144-1000.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in2101-14050_out144-1000 hetplan_gpu=A100-80G-PCIe hetplan_tp=4 hetplan_pools=decode-A100-80G-PCIe-tp4-wbf16-kvbf16:A100-80G-PCIe:tp4:1 > results/bench-in2101-14050_out144-1000.log 2>&1 &

wait
