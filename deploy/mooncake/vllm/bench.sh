#!/usr/bin/env bash
# hetplan: replay the plan's classes against the router with vLLM's benchmark (vllm bench serve).
# Each class runs at its planned rate, all classes at once; then read the results back:
#   hetplan calibrate import-bench results/*.json
set -euo pipefail

mkdir -p results

# class in96-1064_out2-94: served by decode-B200-tp1-wfp8-kvfp8 (B200 tp=1, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 720 \
  --random-output-len 51 \
  --random-range-ratio '{"input":0.478,"output":0.836}' \
  --ignore-eos \
  --num-prompts 27 \
  --request-rate 0.219172 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in96-1064_out2-94.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in96-1064_out2-94 hetplan_gpu=B200 hetplan_tp=1 hetplan_pools=decode-B200-tp1-wfp8-kvfp8:B200:tp1:1 > results/bench-in96-1064_out2-94.log 2>&1 &

# class in96-1064_out95-4518: served by decode-B200-tp1-wfp8-kvfp8 (B200 tp=1, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 724 \
  --random-output-len 276 \
  --random-range-ratio '{"input":0.469,"output":0.656}' \
  --ignore-eos \
  --num-prompts 33 \
  --request-rate 0.269729 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in96-1064_out95-4518.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in96-1064_out95-4518 hetplan_gpu=B200 hetplan_tp=1 hetplan_pools=decode-B200-tp1-wfp8-kvfp8:B200:tp1:1 > results/bench-in96-1064_out95-4518.log 2>&1 &

# class in1065-11814_out2-94: served by decode-B200-tp1-wfp8-kvfp8 (B200 tp=1, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 4742 \
  --random-output-len 52 \
  --random-range-ratio '{"input":0.775,"output":0.822}' \
  --ignore-eos \
  --num-prompts 262 \
  --request-rate 2.17672 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in1065-11814_out2-94.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in1065-11814_out2-94 hetplan_gpu=B200 hetplan_tp=1 hetplan_pools=decode-B200-tp1-wfp8-kvfp8:B200:tp1:1 > results/bench-in1065-11814_out2-94.log 2>&1 &

# class in1065-11814_out95-4518: served by decode-B200-tp1-wfp8-kvfp8 (B200 tp=1, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 4714 \
  --random-output-len 284 \
  --random-range-ratio '{"input":0.774,"output":0.665}' \
  --ignore-eos \
  --num-prompts 342 \
  --request-rate 2.84923 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in1065-11814_out95-4518.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in1065-11814_out95-4518 hetplan_gpu=B200 hetplan_tp=1 hetplan_pools=decode-B200-tp1-wfp8-kvfp8:B200:tp1:1 > results/bench-in1065-11814_out95-4518.log 2>&1 &

# class in11815-131072_out2-94: served by decode-B200-tp1-wfp8-kvfp8 (B200 tp=1, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 23131 \
  --random-output-len 52 \
  --random-range-ratio '{"input":0.489,"output":0.801}' \
  --ignore-eos \
  --num-prompts 63 \
  --request-rate 0.516679 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in11815-131072_out2-94.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in11815-131072_out2-94 hetplan_gpu=B200 hetplan_tp=1 hetplan_pools=decode-B200-tp1-wfp8-kvfp8:B200:tp1:1 > results/bench-in11815-131072_out2-94.log 2>&1 &

# class in11815-131072_out95-4518: served by decode-B200-tp1-wfp8-kvfp8 (B200 tp=1, 100%)
vllm bench serve \
  --backend openai \
  --base-url http://127.0.0.1:30000 \
  --endpoint /v1/completions \
  --model llama-3.1-70b \
  --tokenizer meta-llama/Llama-3.1-70B-Instruct \
  --dataset-name random \
  --random-input-len 22737 \
  --random-output-len 281 \
  --random-range-ratio '{"input":0.48,"output":0.662}' \
  --ignore-eos \
  --num-prompts 75 \
  --request-rate 0.623626 \
  --seed 0 \
  --save-result \
  --result-dir results \
  --result-filename bench-in11815-131072_out95-4518.json \
  --metadata hetplan_model=llama-3.1-70b hetplan_class=in11815-131072_out95-4518 hetplan_gpu=B200 hetplan_tp=1 hetplan_pools=decode-B200-tp1-wfp8-kvfp8:B200:tp1:1 > results/bench-in11815-131072_out95-4518.log 2>&1 &

wait
