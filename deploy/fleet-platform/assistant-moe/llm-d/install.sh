#!/usr/bin/env bash
# hetplan: llm-d releases for plan assistant-moe (one per pool), then the
# InferencePool and HTTPRoute. Run in this folder with kubectl's namespace set.
set -euo pipefail

helm repo add llm-d-modelservice https://llm-d-incubation.github.io/llm-d-modelservice/

helm upgrade --install ms-qwen3-30b-a3b-colocated-b200-tp1-wfp8-kvfp8 \
  llm-d-modelservice/llm-d-modelservice \
  --version v0.4.12 -f values/colocated-b200-tp1-wfp8-kvfp8.yaml

kubectl apply -f inferencepool.yaml
