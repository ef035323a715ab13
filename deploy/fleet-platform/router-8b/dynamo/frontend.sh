#!/usr/bin/env bash
# hetplan: Dynamo's OpenAI-compatible frontend (routes to the workers above).
set -euo pipefail

python3 -m dynamo.frontend \
  --http-port 30000
