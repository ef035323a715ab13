#!/usr/bin/env bash
# hetplan: the shared route of fleet fleet-platform: the body-based router (model name
# into a header), then one HTTPRoute rule per member. Run after the members'
# install.sh, with kubectl's namespace set.
set -euo pipefail

helm upgrade --install body-based-router \
  oci://registry.k8s.io/gateway-api-inference-extension/charts/body-based-routing \
  --version v1.0.1 \
  --set provider.name=istio \
  --set inferenceGateway.name=llm-d-inference-gateway

kubectl apply -f gateway.yaml
