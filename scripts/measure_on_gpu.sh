#!/usr/bin/env bash
# Every measurement hetplan takes on a GPU machine, in one go (issue 3): kernel
# microbenchmarks -> calibration files, and a real transformers layer stack -> measured
# tables. Usage: scripts/measure_on_gpu.sh GPU_NAME OUT_DIR   (e.g. H100-SXM /tmp/meas)
# Needs torch + transformers on that machine. Each step runs even if an earlier one failed.
set -uo pipefail
gpu=${1:?catalog GPU name}; out=${2:?output directory}
mkdir -p "$out"
log="$out/run.log"
cd "$(dirname "$0")/.."
{ date -u; nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,driver_version --format=csv
  python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
} 2>&1 | tee "$log"
run() { echo "== $*" | tee -a "$log"; "$@" 2>&1 | tee -a "$log"; }
run python3 -m hetplan.cli calibrate run --gpu "$gpu" --model llama-3.1-8b \
    --out "$out/$gpu.llama-3.1-8b-tp1.yaml"
run python3 -m hetplan.cli calibrate run --gpu "$gpu" --model llama-3.1-70b --tp 4 \
    --out "$out/$gpu.llama-3.1-70b-tp4.yaml"
run python3 scripts/measure_hf_layers.py --model llama-3.1-8b --gpu "$gpu" --out "$out/hf_llama-3.1-8b.csv"
run python3 scripts/measure_hf_layers.py --model tests/data/models/llama-2-13b-hf.json \
    --model-ref tests/data/models/llama-2-13b-hf.json --gpu "$gpu" --out "$out/hf_llama-2-13b.csv" \
    --decode 1:1024,8:1024,16:2048,32:1024,48:1024
run python3 scripts/measure_hf_layers.py --model llama-3.1-70b --layers 10 --gpu "$gpu" \
    --out "$out/hf_llama-3.1-70b-10layers.csv"
date -u | tee -a "$log"
