#!/usr/bin/env bash
# hetplan: llm-d releases for plan coder-32b (one per pool), then the
# InferencePool and HTTPRoute. Run in this folder with kubectl's namespace set.
set -euo pipefail

helm repo add llm-d-modelservice https://llm-d-incubation.github.io/llm-d-modelservice/

helm upgrade --install ms-qwen3-32b-prefill-l40s-tp1-wfp8-kvfp8 \
  llm-d-modelservice/llm-d-modelservice \
  --version v0.4.12 -f values/prefill-l40s-tp1-wfp8-kvfp8.yaml
helm upgrade --install ms-qwen3-32b-decode-b200-tp1-wfp8-kvfp8 \
  llm-d-modelservice/llm-d-modelservice \
  --version v0.4.12 -f values/decode-b200-tp1-wfp8-kvfp8.yaml

kubectl apply -f inferencepool.yaml
