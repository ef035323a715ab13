#!/usr/bin/env bash
# hetplan: llm-d releases for plan splitwise-conversation (one per pool), then the
# InferencePool and HTTPRoute. Run in this folder with kubectl's namespace set.
set -euo pipefail

helm repo add llm-d-modelservice https://llm-d-incubation.github.io/llm-d-modelservice/

helm upgrade --install ms-llama-3-1-70b-prefill-h100-sxm-tp4-wfp8-kvbf16 \
  llm-d-modelservice/llm-d-modelservice \
  --version v0.4.12 -f values/prefill-h100-sxm-tp4-wfp8-kvbf16.yaml
helm upgrade --install ms-llama-3-1-70b-decode-a100-80g-pcie-tp4-wb-7e6601bc \
  llm-d-modelservice/llm-d-modelservice \
  --version v0.4.12 -f values/decode-a100-80g-pcie-tp4-wbf16-kvbf16.yaml

kubectl apply -f inferencepool.yaml
