"""Time a real Hugging Face transformers decoder on the local GPU and write the timings as
a measurement table (the columns of hetplan.perf.measured.COLUMNS) that
`scripts/validate_perf_model.py` and `hetplan calibrate fit-overhead` read.

The model is built from a config.json with random weights (nothing is downloaded):

    python3 scripts/measure_hf_layers.py --model llama-3.1-8b --gpu H100-SXM \
        --out measured.csv [--prefill 1:512,4:2048] [--decode 8:1024,64:2048]

Prefill: one forward pass of `batch` prompts of `input` tokens (KV written, logits for the
last token only, as a serving engine computes them). Decode: the mean time of one step of
`batch` sequences at `context` tokens, with a preallocated (static) KV cache so a step reads
the cache once instead of re-concatenating it, captured in a CUDA graph as serving engines
do (`--eager` times Python-launched steps instead). The cache is filled with zeros rather
than a real prefill: attention costs the same whatever the keys hold.

Engine: transformers with PyTorch SDPA attention (prefill eager; decode graph-captured), so
per-step overheads differ from vLLM's and the rows say `engine=hf-transformers`. Long prefills and
large decode batches are kernel-bound and test the roofline; small ones test overheads.
Needs torch and transformers (not hetplan dependencies).
"""

from __future__ import annotations

import argparse
import csv
import inspect
import json
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from hetplan.model import load_model, resolve_model_path
from hetplan.perf.measured import COLUMNS

DEFAULT_PREFILL = "1:128,1:512,1:1024,1:2048,1:4096,1:8192,4:2048,8:1024,16:512"
DEFAULT_DECODE = "1:1024,8:1024,32:1024,64:2048,128:1024,256:512,16:4096"


def parse_points(text: str) -> list[tuple[int, int]]:
    """'B:T,B:T' -> [(batch, tokens)]."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        b, t = part.split(":")
        out.append((int(b), int(t)))
    return out


def build_model(config_path: Path, device: str, layers: int | None):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    raw = json.loads(config_path.read_text())
    if layers:
        raw["num_hidden_layers"] = layers
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config.json").write_text(json.dumps(raw))
        config = AutoConfig.from_pretrained(tmp)
    kwargs = {"attn_implementation": "sdpa"}
    params = inspect.signature(AutoModelForCausalLM.from_config).parameters
    kwargs["dtype" if "dtype" in params or "torch_dtype" not in params else "torch_dtype"] = \
        torch.bfloat16
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, **kwargs)
    return model.to(torch.bfloat16).eval(), raw


def timer(device: str):
    import torch

    def run(fn, reps: int, warmup: int = 2) -> float:
        for _ in range(warmup):
            fn()
        times = []
        for _ in range(reps):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        times.sort()
        return times[len(times) // 2] * 1e3          # median, ms
    return run


def prefill_ms(model, vocab: int, batch: int, tokens: int, device: str, reps: int) -> float:
    import torch
    ids = torch.randint(0, vocab, (batch, tokens), device=device)

    def fwd():
        with torch.inference_mode():
            model(input_ids=ids, use_cache=True, logits_to_keep=1)
    return timer(device)(fwd, reps)


def _static_cache(model, batch: int, max_len: int, device: str):
    import torch
    from transformers import StaticCache
    sig = inspect.signature(StaticCache.__init__).parameters
    kw = {"config": model.config, "max_cache_len": max_len}
    for name, value in (("max_batch_size", batch), ("batch_size", batch), ("device", device),
                        ("dtype", torch.bfloat16)):
        if name in sig:
            kw[name] = value
    return StaticCache(**kw)


def decode_step_ms(model, vocab: int, batch: int, context: int, steps: int, device: str,
                   reps: int, cuda_graph: bool = True) -> tuple[float, str]:
    """Mean ms per decode step over `steps` steps starting at `context` cached tokens."""
    import torch
    cache_kind = "static"
    try:
        cache = _static_cache(model, batch, context + steps * (reps + 2) + 1, device)
    except Exception as e:        # noqa: BLE001 - report and fall back, never hide
        print(f"static cache unavailable ({e}); using a dynamic cache", file=sys.stderr)
        cache, cache_kind = None, "dynamic"
    tok = torch.randint(0, vocab, (batch, 1), device=device)
    pos = [context]

    if cache is None:
        from transformers import DynamicCache
        cache = DynamicCache()
        with torch.inference_mode():
            model(input_ids=torch.randint(0, vocab, (batch, context), device=device),
                  past_key_values=cache, use_cache=True, logits_to_keep=1)

    def run_steps():
        with torch.inference_mode():
            for _ in range(steps):
                p = torch.tensor([pos[0]], device=device)
                model(input_ids=tok, past_key_values=cache, cache_position=p,
                      position_ids=p.expand(batch, 1), use_cache=True, logits_to_keep=1)
                pos[0] += 1
    if cuda_graph and cache_kind == "static" and device.startswith("cuda"):
        graphed = _graph_step(model, tok, cache, context, batch, device)
        if graphed is not None:
            def replay_steps():
                for _ in range(steps):
                    graphed.replay()
            return timer(device)(replay_steps, reps) / steps, "static_cudagraph"
    return timer(device)(run_steps, reps) / steps, cache_kind


def _graph_step(model, tok, cache, context: int, batch: int, device: str):
    """Capture one decode step in a CUDA graph, as serving engines do, so the timing shows
    the GPU's work rather than Python's kernel launches. Each replay rewrites the same cache
    slot, which costs what a step at that position costs. None where capture fails."""
    import torch
    pos = torch.tensor([context], device=device)
    pos_ids = pos.expand(batch, 1).contiguous()

    def step():
        model(input_ids=tok, past_key_values=cache, cache_position=pos, position_ids=pos_ids,
              use_cache=True, logits_to_keep=1)
    try:
        with torch.inference_mode():
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    step()
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                step()
        return graph
    except Exception as e:        # noqa: BLE001 - report and fall back to eager steps
        print(f"CUDA graph capture failed ({type(e).__name__}: {e}); timing eager steps",
              file=sys.stderr)
        return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="catalog model name or config.json path")
    ap.add_argument("--gpu", required=True, help="catalog GPU name of the local device")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--prefill", default=DEFAULT_PREFILL, help="batch:input_tokens,...")
    ap.add_argument("--decode", default=DEFAULT_DECODE, help="batch:context_tokens,...")
    ap.add_argument("--steps", type=int, default=16, help="decode steps per timing")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--layers", type=int, default=None,
                    help="override num_hidden_layers (smoke tests; rows then name a "
                         "truncated config written beside --out)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--eager", action="store_true",
                    help="time decode steps eagerly (no CUDA graph), Python overhead included")
    ap.add_argument("--model-ref", default=None,
                    help="model value to write in the table (default: the catalog name)")
    a = ap.parse_args(argv)

    import torch
    import transformers

    a.out.parent.mkdir(parents=True, exist_ok=True)
    config_path = resolve_model_path(a.model)
    model, raw = build_model(config_path, a.device, a.layers)
    spec = load_model(a.model)
    model_ref = a.model_ref or a.model
    if a.layers:
        model_ref = str(a.out.with_suffix(f".{a.layers}-layers.json"))
        Path(model_ref).write_text(json.dumps(raw, indent=2, sort_keys=True))
    vocab = int(raw["vocab_size"])
    where = f"{platform.node()} {torch.cuda.get_device_name() if a.device.startswith('cuda') else a.device}"
    engine = f"hf-transformers {transformers.__version__} sdpa, torch {torch.__version__}"
    source = f"measured by scripts/measure_hf_layers.py on {where}, {date.today().isoformat()}"
    rows = []
    for batch, inp in parse_points(a.prefill):
        ms = prefill_ms(model, vocab, batch, inp, a.device, a.reps)
        print(f"prefill b={batch} in={inp}: {ms:.2f} ms", file=sys.stderr, flush=True)
        rows.append({"id": f"hf-{spec.name}-prefill-b{batch}-in{inp}", "phase": "prefill",
                     "batch": batch, "input_tokens": inp, "output_tokens": 1,
                     "context_tokens": inp, "measured_ms": round(ms, 3),
                     "metric": "prefill_step"})
    for batch, ctx in parse_points(a.decode):
        try:
            ms, kind = decode_step_ms(model, vocab, batch, ctx, a.steps, a.device, a.reps,
                                      not a.eager)
        except torch.OutOfMemoryError:
            print(f"decode b={batch} ctx={ctx}: out of memory, skipped", file=sys.stderr)
            torch.cuda.empty_cache()
            continue
        # the static cache is allocated for every step timed (warm-up included) and SDPA
        # reads all of it each step (masked), so that is the context a step attends to
        grown = a.steps * (a.reps + 2)
        mid_ctx = ctx + grown / 2 if kind == "dynamic" else ctx + grown + 1
        print(f"decode b={batch} ctx={ctx}: {ms:.2f} ms/step ({kind} cache)", file=sys.stderr,
              flush=True)
        rows.append({"id": f"hf-{spec.name}-decode-b{batch}-ctx{ctx}", "phase": "decode",
                     "batch": batch, "input_tokens": ctx, "output_tokens": "",
                     "context_tokens": round(mid_ctx, 1), "measured_ms": round(ms, 3),
                     "metric": f"decode_step_{kind}_cache"})
        del ms
        torch.cuda.empty_cache() if a.device.startswith("cuda") else None
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with a.out.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(COLUMNS))
        w.writeheader()
        for r in rows:
            w.writerow({**{c: "" for c in COLUMNS}, **r, "model": model_ref, "gpu": a.gpu,
                        "tp": 1, "weight_dtype": "bf16", "kv_dtype": "bf16",
                        "engine": engine, "source": source})
    print(f"wrote {len(rows)} rows to {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
