#!/usr/bin/env bash
# hetplan: replay the plan's classes against the router with vLLM's benchmark (vllm bench serve).
# Each class runs at its planned rate, all classes at once; then read the results back:
#   hetplan calibrate import-bench results/*.json
set -euo pipefail

mkdir -p results

# class in4016-11479_out12-61: served by decode-H100-SXM-tp4-wfp8-kvfp8 (H100-SXM tp=4, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 6938 \
  --random-output-len 44 \
  --random-range-ratio '{"input":0.421,"output":0.391}' \
  --ignore-eos \
  --num-prompts 28 \
  --request-rate 0.227106 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in4016-11479_out12-61.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in4016-11479_out12-61 hetplan_gpu=H100-SXM hetplan_tp=4 hetplan_pools=decode-H100-SXM-tp4-wfp8-kvfp8:H100-SXM:tp4:1 > results/bench-in4016-11479_out12-61.log 2>&1 &

# class in4016-11479_out62-315: served by decode-H100-SXM-tp4-wfp8-kvfp8 (H100-SXM tp=4, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 6776 \
  --random-output-len 155 \
  --random-range-ratio '{"input":0.407,"output":0.599}' \
  --ignore-eos \
  --num-prompts 135 \
  --request-rate 1.12217 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in4016-11479_out62-315.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in4016-11479_out62-315 hetplan_gpu=H100-SXM hetplan_tp=4 hetplan_pools=decode-H100-SXM-tp4-wfp8-kvfp8:H100-SXM:tp4:1 > results/bench-in4016-11479_out62-315.log 2>&1 &

# class in4016-11479_out316-1618: served by decode-H100-SXM-tp4-wfp8-kvfp8 (H100-SXM tp=4, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 7081 \
  --random-output-len 517 \
  --random-range-ratio '{"input":0.433,"output":0.389}' \
  --ignore-eos \
  --num-prompts 35 \
  --request-rate 0.290562 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in4016-11479_out316-1618.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in4016-11479_out316-1618 hetplan_gpu=H100-SXM hetplan_tp=4 hetplan_pools=decode-H100-SXM-tp4-wfp8-kvfp8:H100-SXM:tp4:1 > results/bench-in4016-11479_out316-1618.log 2>&1 &

# class in11480-32817_out12-61: served by decode-H100-SXM-tp4-wfp8-kvfp8 (H100-SXM tp=4, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 19513 \
  --random-output-len 44 \
  --random-range-ratio '{"input":0.412,"output":0.383}' \
  --ignore-eos \
  --num-prompts 27 \
  --request-rate 0.218756 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in11480-32817_out12-61.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in11480-32817_out12-61 hetplan_gpu=H100-SXM hetplan_tp=4 hetplan_pools=decode-H100-SXM-tp4-wfp8-kvfp8:H100-SXM:tp4:1 > results/bench-in11480-32817_out12-61.log 2>&1 &

# class in11480-32817_out62-315: served by decode-H100-SXM-tp4-wfp8-kvfp8 (H100-SXM tp=4, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 20068 \
  --random-output-len 156 \
  --random-range-ratio '{"input":0.428,"output":0.602}' \
  --ignore-eos \
  --num-prompts 138 \
  --request-rate 1.14722 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in11480-32817_out62-315.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in11480-32817_out62-315 hetplan_gpu=H100-SXM hetplan_tp=4 hetplan_pools=decode-H100-SXM-tp4-wfp8-kvfp8:H100-SXM:tp4:1 > results/bench-in11480-32817_out62-315.log 2>&1 &

# class in11480-32817_out316-1618: served by decode-H100-SXM-tp4-wfp8-kvfp8 (H100-SXM tp=4, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 21364 \
  --random-output-len 534 \
  --random-range-ratio '{"input":0.463,"output":0.408}' \
  --ignore-eos \
  --num-prompts 36 \
  --request-rate 0.292232 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in11480-32817_out316-1618.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in11480-32817_out316-1618 hetplan_gpu=H100-SXM hetplan_tp=4 hetplan_pools=decode-H100-SXM-tp4-wfp8-kvfp8:H100-SXM:tp4:1 > results/bench-in11480-32817_out316-1618.log 2>&1 &

# class in32818-93814_out12-61: served by decode-H100-SXM-tp4-wfp8-kvfp8 (H100-SXM tp=4, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 47699 \
  --random-output-len 41 \
  --random-range-ratio '{"input":0.312,"output":0.482}' \
  --ignore-eos \
  --num-prompts 9 \
  --request-rate 0.070136 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in32818-93814_out12-61.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in32818-93814_out12-61 hetplan_gpu=H100-SXM hetplan_tp=4 hetplan_pools=decode-H100-SXM-tp4-wfp8-kvfp8:H100-SXM:tp4:1 > results/bench-in32818-93814_out12-61.log 2>&1 &

# class in32818-93814_out62-315: served by decode-H100-SXM-tp4-wfp8-kvfp8 (H100-SXM tp=4, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 47600 \
  --random-output-len 150 \
  --random-range-ratio '{"input":0.311,"output":0.587}' \
  --ignore-eos \
  --num-prompts 41 \
  --request-rate 0.338989 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in32818-93814_out62-315.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in32818-93814_out62-315 hetplan_gpu=H100-SXM hetplan_tp=4 hetplan_pools=decode-H100-SXM-tp4-wfp8-kvfp8:H100-SXM:tp4:1 > results/bench-in32818-93814_out62-315.log 2>&1 &

# class in32818-93814_out316-1618: served by decode-H100-SXM-tp4-wfp8-kvfp8 (H100-SXM tp=4, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 49195 \
  --random-output-len 495 \
  --random-range-ratio '{"input":0.333,"output":0.362}' \
  --ignore-eos \
  --num-prompts 12 \
  --request-rate 0.098524 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in32818-93814_out316-1618.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in32818-93814_out316-1618 hetplan_gpu=H100-SXM hetplan_tp=4 hetplan_pools=decode-H100-SXM-tp4-wfp8-kvfp8:H100-SXM:tp4:1 > results/bench-in32818-93814_out316-1618.log 2>&1 &

wait
