"""Engine-level GPU measurements for issue 15 item 5 (run on a lent H100/H200, once).

Standalone: needs only PyTorch and the standard library (the device machine has no
pydantic, so hetplan itself is not imported there). Reads a Hugging Face config.json for
the layer shapes (default: catalogs/models/llama-3.1-8b.json) and measures, on one GPU:

1. device-to-device copy bandwidth (bytes read + written);
2. the model's per-layer GEMMs at TP 1, bf16 (F.linear) and fp8 (torch._scaled_mm, per-tensor
   scales, bf16 out), for m = 1..8192 tokens, each timed inside a CUDA graph (no launch
   cost), weights rotated over enough copies to defeat the 50-60 MB L2;
3. decode attention (one query token per sequence, GQA folded as in FlashAttention's decode:
   the query heads of one KV head become that head's query rows) over a contiguous KV cache,
   batch 1-256 x context 1k-32k, through torch's SDPA (FlashAttention backend when it takes
   the shapes). Not a paged kernel: vLLM's paged/split-KV kernels read the same bytes;
4. whole decode steps of the model's layer stack (random weights; RMSNorm, RoPE, KV write,
   attention, SwiGLU MLP, LM head, greedy argmax; no sampling or scheduler) at several
   (batch, context), bf16 and fp8 weights, timed eagerly (every kernel launched from Python)
   and as a CUDA graph replay; the difference is the launch cost an engine's graphs remove;
5. whole prefill steps (one sequence of T prompt tokens, causal attention), eager and graph.

Output: one JSON file (--out), rewritten after every section so a run cut short keeps what
it measured. Times are milliseconds; each is the median of several timed replays.
Usage: python3 scripts/gpu_engine_bench.py --out /tmp/engine_bench.json [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
import traceback

import torch
import torch.nn.functional as F

L2_DEFEAT_BYTES = 256 * 2**20       # rotate weights so one pass reads >= 4x a 60 MB L2
TARGET_GRAPH_MS = 8.0               # aim each timed replay at ~8 ms of GPU work
MAX_KV_BYTES = 40e9                 # skip attention shapes whose K+V exceed this
DEV = "cuda"                        # "cpu" only for --smoke-cpu


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def save(path: str, data: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def events_ms(fn, reps: int) -> float:
    """Wall time of `reps` back-to-back calls between CUDA events (includes launch cost)."""
    st, en = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    st.record()
    for _ in range(reps):
        fn()
    en.record()
    en.synchronize()
    return st.elapsed_time(en) / reps


def graph_of(body):
    """Capture body() in a CUDA graph after a warm-up on a side stream (as torch requires)."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(2):
            body()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        body()
    g.replay()
    torch.cuda.synchronize()
    return g


def timed_replays(g, inner: int, outer: int = 5) -> float:
    times = []
    for _ in range(outer):
        st, en = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        st.record()
        g.replay()
        en.record()
        en.synchronize()
        times.append(st.elapsed_time(en) / inner)
    return statistics.median(times)


def op_ms(op, n_args: int) -> tuple[float, str]:
    """GPU time of op(i) (i cycles over n_args argument sets): graph replay of `inner` calls,
    inner sized from one eager estimate. Falls back to an eager event loop."""
    op(0)
    torch.cuda.synchronize()
    est = max(events_ms(lambda: op(0), 3), 1e-3)
    inner = int(min(200, max(3, TARGET_GRAPH_MS / est)))

    def body():
        for i in range(inner):
            op(i % n_args)
    try:
        g = graph_of(body)
        ms = timed_replays(g, inner)
        del g
        return ms, "cuda_graph"
    except RuntimeError as e:
        log(f"  graph capture failed ({str(e)[:120]}); eager loop")
        torch.cuda.synchronize()
        return statistics.median(events_ms(body, 1) / inner for _ in range(3)), "eager_events"


def copies_for(nbytes: int) -> int:
    return max(1, min(32, math.ceil(L2_DEFEAT_BYTES / max(nbytes, 1))))


# ---------------------------------------------------------------- sections

def env_info() -> dict:
    p = torch.cuda.get_device_properties(0)
    info = {"torch": torch.__version__, "cuda": torch.version.cuda, "device": p.name,
            "sm_count": p.multi_processor_count, "mem_gib": round(p.total_memory / 2**30, 1),
            "python": sys.version.split()[0], "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                          time.gmtime())}
    try:
        info["nvidia_smi"] = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem,"
             "power.limit", "--format=csv"], capture_output=True, text=True,
            timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        info["nvidia_smi"] = f"unavailable: {e}"
    return info


def copy_bandwidth() -> dict:
    n = 2 * 2**30 // 2
    src = torch.empty(n, device=DEV, dtype=torch.bfloat16)
    dst = torch.empty_like(src)
    ms, how = op_ms(lambda i: dst.copy_(src), 1)
    return {"bytes_moved": 4 * n, "ms": ms, "tbps": 4 * n / (ms * 1e-3) / 1e12, "timing": how}


def gemm_shapes(cfg: dict) -> list[tuple[str, int, int]]:
    h, nh, kv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or h // nh
    ffn = cfg["intermediate_size"]
    return [("qkv", (nh + 2 * kv) * hd, h), ("o", h, nh * hd), ("gate_up", 2 * ffn, h),
            ("down", h, ffn)]


def gemms(cfg: dict, tokens: list[int], fp8: bool) -> list[dict]:
    rows = []
    one = torch.ones((), device=DEV, dtype=torch.float32)
    for m in tokens:
        for name, n, k in gemm_shapes(cfg):
            if fp8:
                nc = copies_for(n * k)
                ws = [torch.randn(n, k, device=DEV).to(torch.float8_e4m3fn).t()
                      for _ in range(nc)]
                m_run = m
                a = torch.randn(m_run, k, device=DEV).to(torch.float8_e4m3fn)
                try:
                    torch._scaled_mm(a, ws[0], scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
                except RuntimeError:        # cuBLASLt fp8 wants dims in multiples of 16
                    m_run = max(16, math.ceil(m / 16) * 16)
                    a = torch.randn(m_run, k, device=DEV).to(torch.float8_e4m3fn)

                def op(i, a=a, ws=ws):
                    return torch._scaled_mm(a, ws[i], scale_a=one, scale_b=one,
                                            out_dtype=torch.bfloat16)
                dtype = "fp8"
            else:
                nc = copies_for(2 * n * k)
                ws = [torch.randn(n, k, device=DEV, dtype=torch.bfloat16) for _ in range(nc)]
                a = torch.randn(m, k, device=DEV, dtype=torch.bfloat16)
                m_run = m

                def op(i, a=a, ws=ws):
                    return F.linear(a, ws[i])
                dtype = "bfloat16"
            ms, how = op_ms(op, nc)
            rows.append({"gemm_dtype": dtype, "name": name, "m": m, "m_run": m_run, "n": n,
                         "k": k, "latency": ms, "weight_copies": nc, "timing": how})
            del ws, a
        log(f"  {'fp8' if fp8 else 'bf16'} m={m}: " + ", ".join(
            f"{r['name']} {r['latency']:.4f}" for r in rows[-4:]))
    torch.cuda.empty_cache()
    return rows


def fp8_recipes(cfg: dict, tokens: list[int]) -> list[dict]:
    """FP8 GEMMs under three activation-scaling recipes, same weights (per-output-channel
    scales where rowwise): "tensor" (one static scale each, TensorRT-LLM's and ModelOpt
    checkpoints' recipe), "rowwise" (per-token x per-channel scales in the GEMM's epilogue),
    and "rowwise_dynamic" (rowwise plus the activation's quantization from bf16 each call:
    per-token amax, divide, cast; vLLM's dynamic per-token FP8)."""
    rows = []
    one = torch.ones((), device=DEV, dtype=torch.float32)

    def quant(x):
        s_tok = x.abs().amax(-1, keepdim=True).float().clamp(min=1e-6) / 448.0
        return (x / s_tok).to(torch.float8_e4m3fn), s_tok
    try:                                   # one fused kernel, as vLLM's quant op is
        fused_quant = torch.compile(quant, dynamic=True)
        fused_quant(torch.randn(16, 256, device=DEV, dtype=torch.bfloat16))
        quant_kind = "torch.compile"
    except Exception as e:                 # noqa: BLE001 - any compile failure: stay eager
        log(f"  quant compile failed ({str(e)[:120]}); eager quant")
        fused_quant, quant_kind = quant, "eager"
    for m in tokens:
        for name, n, k in gemm_shapes(cfg):
            nc = copies_for(n * k)
            ws = [torch.randn(n, k, device=DEV).to(torch.float8_e4m3fn).t() for _ in range(nc)]
            sb = torch.rand(1, n, device=DEV, dtype=torch.float32) + 0.5
            m_run = max(16, math.ceil(m / 16) * 16)
            xb = torch.randn(m_run, k, device=DEV, dtype=torch.bfloat16)
            a = xb.to(torch.float8_e4m3fn)
            sa = torch.rand(m_run, 1, device=DEV, dtype=torch.float32) + 0.5

            def tensor(i):
                return torch._scaled_mm(a, ws[i], scale_a=one, scale_b=one,
                                        out_dtype=torch.bfloat16)

            def rowwise(i):
                return torch._scaled_mm(a, ws[i], scale_a=sa, scale_b=sb,
                                        out_dtype=torch.bfloat16)

            def rowwise_dynamic(i):
                q, s_tok = fused_quant(xb)
                return torch._scaled_mm(q, ws[i], scale_a=s_tok, scale_b=sb,
                                        out_dtype=torch.bfloat16)
            for recipe, op in (("tensor", tensor), ("rowwise", rowwise),
                               ("rowwise_dynamic", rowwise_dynamic)):
                try:
                    ms, how = op_ms(op, nc)
                except RuntimeError as e:
                    rows.append({"recipe": recipe, "name": name, "m": m, "error": str(e)[:200]})
                    continue
                rows.append({"gemm_dtype": "fp8", "recipe": recipe, "name": name, "m": m,
                             "m_run": m_run, "n": n, "k": k, "latency": ms,
                             "weight_copies": nc, "timing": how, "quant": quant_kind})
            del ws
        log(f"  fp8 recipes m={m}: " + ", ".join(
            f"{r['name']}/{r['recipe']} {r.get('latency', float('nan')):.4f}"
            for r in rows[-12:] if r["name"] in ("gate_up",)))
    torch.cuda.empty_cache()
    return rows


def _sdpa_flash():
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
        return sdpa_kernel([SDPBackend.FLASH_ATTENTION])
    except ImportError:
        return None


def decode_attention(cfg: dict, batches: list[int], contexts: list[int]) -> list[dict]:
    nh, kvh = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or cfg["hidden_size"] // nh
    rows = []
    for L in contexts:
        for b in batches:
            kv_bytes = 2 * b * kvh * L * hd * 2
            if kv_bytes > MAX_KV_BYTES:
                rows.append({"batch": b, "context": L, "skipped": "kv bytes over limit"})
                continue
            k = torch.empty(b, kvh, L, hd, device=DEV, dtype=torch.bfloat16).normal_()
            v = torch.empty_like(k).normal_()
            q = torch.randn(b, kvh, nh // kvh, hd, device=DEV, dtype=torch.bfloat16)
            backend = "flash"
            try:
                ctx = _sdpa_flash()
                with ctx:
                    F.scaled_dot_product_attention(q, k, v)
            except (RuntimeError, TypeError):
                backend = "sdpa_default"

            def op(i):
                if backend == "flash":
                    with _sdpa_flash():
                        return F.scaled_dot_product_attention(q, k, v)
                return F.scaled_dot_product_attention(q, k, v)
            ms, how = op_ms(op, 1)
            rows.append({"batch": b, "context": L, "num_heads": nh, "kv_heads": kvh,
                         "head_dim": hd, "kv_bytes": kv_bytes, "latency": ms,
                         "tbps": kv_bytes / (ms * 1e-3) / 1e12, "backend": backend,
                         "timing": how})
            log(f"  attn b={b} L={L}: {ms:.4f} ms {rows[-1]['tbps']:.2f} TB/s ({backend})")
            del k, v, q
            torch.cuda.empty_cache()
    return rows


class Stack:
    """The model's decoder stack with random weights; bf16 or fp8 (per-tensor) linears."""

    def __init__(self, cfg: dict, fp8: bool):
        self.h, self.nh = cfg["hidden_size"], cfg["num_attention_heads"]
        self.kvh = cfg["num_key_value_heads"]
        self.hd = cfg.get("head_dim") or self.h // self.nh
        self.ffn, self.n_layers = cfg["intermediate_size"], cfg["num_hidden_layers"]
        self.vocab, self.eps = cfg["vocab_size"], cfg.get("rms_norm_eps", 1e-5)
        self.fp8 = fp8
        self.one = torch.ones((), device=DEV, dtype=torch.float32)
        bf = dict(device=DEV, dtype=torch.bfloat16)
        self.layers = []
        for _ in range(self.n_layers):
            ws = {nm: self._weight(n, k) for nm, n, k in gemm_shapes(cfg)}
            ws["n1"] = torch.ones(self.h, **bf)
            ws["n2"] = torch.ones(self.h, **bf)
            self.layers.append(ws)
        self.embed = torch.randn(self.vocab, self.h, **bf) * 0.02
        self.lm_head = torch.randn(self.vocab, self.h, **bf) * 0.02
        self.nf = torch.ones(self.h, **bf)

    def _weight(self, n: int, k: int):
        w = torch.randn(n, k, device=DEV, dtype=torch.bfloat16) * 0.02
        return w.to(torch.float8_e4m3fn).t() if self.fp8 else w

    def linear(self, x, w):
        if not self.fp8:
            return F.linear(x, w)
        xq = x.to(torch.float8_e4m3fn)          # per-tensor scale 1: same kernels and bytes
        return torch._scaled_mm(xq, w, scale_a=self.one, scale_b=self.one,
                                out_dtype=torch.bfloat16)

    def norm(self, x, w):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * w

    def rope(self, x, cos, sin):
        x1, x2 = x.chunk(2, -1)
        return x * cos + torch.cat((-x2, x1), -1) * sin

    def _layer(self, x, ws, kv_l, cos, sin, B: int, T: int, causal: bool):
        r = x
        y = self.linear(self.norm(x, ws["n1"]), ws["qkv"])
        q, k, v = y.split([self.nh * self.hd, self.kvh * self.hd, self.kvh * self.hd], -1)
        q = self.rope(q.view(B, T, self.nh, self.hd), cos, sin)
        k = self.rope(k.view(B, T, self.kvh, self.hd), cos, sin)
        kc, vc = kv_l
        if causal:
            kc[:, :, :T].copy_(k.transpose(1, 2))
            vc[:, :, :T].copy_(v.view(B, T, self.kvh, self.hd).transpose(1, 2))
            kk, vv = kc[:, :, :T], vc[:, :, :T]
            qq = q.transpose(1, 2)
            rep = self.nh // self.kvh
            a = F.scaled_dot_product_attention(qq, kk.repeat_interleave(rep, 1),
                                               vv.repeat_interleave(rep, 1), is_causal=True)
            a = a.transpose(1, 2).reshape(B * T, self.nh * self.hd)
        else:
            kc[:, :, -1].copy_(k.view(B, self.kvh, self.hd))
            vc[:, :, -1].copy_(v.view(B, self.kvh, self.hd))
            qq = q.view(B, self.kvh, self.nh // self.kvh, self.hd)
            a = F.scaled_dot_product_attention(qq, kc, vc).reshape(B, self.nh * self.hd)
        x = r + self.linear(a.contiguous(), ws["o"])
        r = x
        gu = self.linear(self.norm(x, ws["n2"]), ws["gate_up"])
        g, u = gu.chunk(2, -1)
        x = r + self.linear((F.silu(g) * u).contiguous(), ws["down"])
        return x

    def forward(self, ids, kv, pos, causal: bool):
        """ids (B, T). Decode: T = 1, attention over the cache of context kv length.
        Prefill: B = 1, T prompt tokens, causal attention over themselves; K/V written into
        the cache's first T positions."""
        B, T = ids.shape
        x = self.embed[ids].view(B * T, self.h)
        cos, sin = pos
        for li, ws in enumerate(self.layers):
            x = self._layer(x, ws, kv[li], cos, sin, B, T, causal)
        last = x.view(B, T, self.h)[:, -1]
        return F.linear(self.norm(last, self.nf), self.lm_head).argmax(-1)


def stack_steps(cfg: dict, fp8: bool, decode: list[tuple[int, int]],
                prefill: list[int]) -> list[dict]:
    torch.manual_seed(0)
    st = Stack(cfg, fp8)
    torch.cuda.synchronize()
    rows = []
    hd, kvh = st.hd, st.kvh
    half = hd // 2

    def run(kind: str, B: int, T: int, L: int):
        kv = [(torch.empty(B, kvh, L, hd, device=DEV, dtype=torch.bfloat16).normal_(),
               torch.empty(B, kvh, L, hd, device=DEV, dtype=torch.bfloat16).normal_())
              for _ in range(st.n_layers)]
        ids = torch.randint(0, st.vocab, (B, T), device=DEV)
        ang = torch.rand(T, 1, half, device=DEV)
        cos = torch.cat((ang.cos(), ang.cos()), -1).to(torch.bfloat16)
        sin = torch.cat((ang.sin(), ang.sin()), -1).to(torch.bfloat16)

        def step():
            return st.forward(ids, kv, (cos, sin), causal=(kind == "prefill"))
        step()
        torch.cuda.synchronize()
        reps = 3 if kind == "prefill" else 10
        eager = statistics.median(events_ms(step, reps) for _ in range(3))
        t0 = time.perf_counter()
        for _ in range(reps):
            step()
        cpu_issue_ms = (time.perf_counter() - t0) * 1e3 / reps   # host time to launch a step
        torch.cuda.synchronize()
        try:
            g = graph_of(step)
            graph = timed_replays(g, 1, outer=reps)
            del g
        except RuntimeError as e:
            log(f"  graph capture failed: {str(e)[:160]}")
            graph = None
        rows.append({"phase": kind, "weights": "fp8" if fp8 else "bf16", "batch": B,
                     "tokens": T, "context": L, "layers": st.n_layers, "eager_ms": eager,
                     "graph_ms": graph, "host_issue_ms": cpu_issue_ms})
        log(f"  {kind} {rows[-1]['weights']} B={B} T={T} L={L}: eager {eager:.3f} ms, "
            f"graph {graph if graph is None else round(graph, 3)} ms, host {cpu_issue_ms:.3f}")
        del kv
        torch.cuda.empty_cache()

    for B, L in decode:
        try:
            run("decode", B, 1, L)
        except RuntimeError as e:
            log(f"  decode B={B} L={L} failed: {str(e)[:200]}")
            rows.append({"phase": "decode", "batch": B, "context": L, "error": str(e)[:300]})
            torch.cuda.empty_cache()
    for T in prefill:
        try:
            run("prefill", 1, T, T)
        except RuntimeError as e:
            log(f"  prefill T={T} failed: {str(e)[:200]}")
            rows.append({"phase": "prefill", "tokens": T, "error": str(e)[:300]})
            torch.cuda.empty_cache()
    del st
    torch.cuda.empty_cache()
    return rows


def tp_rank_config(cfg: dict, tp: int) -> dict:
    """One tensor-parallel rank's share of the model: heads, KV heads (at least one), FFN and
    vocabulary split by `tp` (as vLLM's column/row-parallel layers do), hidden size whole.
    No all-reduce runs: the steps time one rank's compute only."""
    if tp == 1:
        return cfg
    nh = cfg["num_attention_heads"]
    return dict(cfg, num_attention_heads=nh // tp,
                num_key_value_heads=max(1, cfg["num_key_value_heads"] // tp),
                intermediate_size=cfg["intermediate_size"] // tp,
                vocab_size=cfg["vocab_size"] // tp,
                head_dim=cfg.get("head_dim") or cfg["hidden_size"] // nh)


def smoke_cpu(cfg: dict) -> None:
    """Shape check of the stack on the CPU with a shrunken config (no timing)."""
    global DEV
    DEV = "cpu"
    small = dict(cfg, num_hidden_layers=2, vocab_size=512)
    st = Stack(small, fp8=False)
    hd, kvh = st.hd, st.kvh
    for B, T, L, causal in [(3, 1, 64, False), (1, 16, 16, True)]:
        kv = [(torch.randn(B, kvh, L, hd, dtype=torch.bfloat16),
               torch.randn(B, kvh, L, hd, dtype=torch.bfloat16)) for _ in range(2)]
        ang = torch.rand(T, 1, hd // 2)
        cos = torch.cat((ang.cos(), ang.cos()), -1).to(torch.bfloat16)
        sin = torch.cat((ang.sin(), ang.sin()), -1).to(torch.bfloat16)
        out = st.forward(torch.randint(0, 512, (B, T)), kv, (cos, sin), causal)
        log(f"smoke B={B} T={T} causal={causal}: argmax shape {tuple(out.shape)}")


def warm_clocks(seconds: float = 3.0) -> dict:
    """Run large matmuls until the SM clock has ramped up (an idle H200 sits at 345 MHz)."""
    a = torch.randn(8192, 8192, device=DEV, dtype=torch.bfloat16)
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        a @ a
        n += 1
        if n % 20 == 0:
            torch.cuda.synchronize()
    torch.cuda.synchronize()
    return {"matmuls": n, "seconds": seconds}


def stack_kernels(cfg: dict, batches: list[int], L: int = 1024) -> list[dict]:
    """GPU activities (kernels, copies) per eager decode step, counted by torch.profiler,
    and the host time per step over several repeats (min and median of 5 x 10 steps)."""
    from torch.profiler import ProfilerActivity, profile
    st = Stack(cfg, fp8=False)
    half, rows = st.hd // 2, []
    for B in batches:
        kv = [(torch.empty(B, st.kvh, L, st.hd, device=DEV, dtype=torch.bfloat16).normal_(),
               torch.empty(B, st.kvh, L, st.hd, device=DEV, dtype=torch.bfloat16).normal_())
              for _ in range(st.n_layers)]
        ids = torch.randint(0, st.vocab, (B, 1), device=DEV)
        ang = torch.rand(1, 1, half, device=DEV)
        cs = (torch.cat((ang.cos(), ang.cos()), -1).to(torch.bfloat16),
              torch.cat((ang.sin(), ang.sin()), -1).to(torch.bfloat16))

        def step():
            return st.forward(ids, kv, cs, causal=False)
        step()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            step()
            torch.cuda.synchronize()
        gpu_events = [e for e in prof.events()
                      if str(getattr(e, "device_type", "")).endswith("CUDA")]
        host = []
        for _ in range(5):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(10):
                step()
            host.append((time.perf_counter() - t0) * 100)
            torch.cuda.synchronize()
        rows.append({"batch": B, "context": L, "layers": st.n_layers,
                     "gpu_activities_per_step": len(gpu_events),
                     "host_issue_ms_min": min(host),
                     "host_issue_ms_median": statistics.median(host)})
        log(f"  kernels B={B}: {len(gpu_events)} per step; host {min(host):.2f}/"
            f"{statistics.median(host):.2f} ms (min/median)")
        del kv
        torch.cuda.empty_cache()
    del st
    torch.cuda.empty_cache()
    return rows


def stack_compiled(cfg: dict, decode: list[tuple[int, int]], prefill: list[int],
                   fp8: bool = False) -> list[dict]:
    """The same stack with each decoder layer compiled by torch.compile (Inductor fuses the
    norms, RoPE and SwiGLU into Triton kernels, as vLLM's compilation does), the whole step
    then captured in a CUDA graph: the closest this script gets to vLLM's V1 decode mode."""
    st = Stack(cfg, fp8=fp8)
    rows = []
    half = st.hd // 2
    torch._dynamo.reset()                 # a fresh cache per stack (weights differ)
    compiled = torch.compile(st._layer, dynamic=False)

    def forward(ids, kv, pos, causal):
        B, T = ids.shape
        x = st.embed[ids].view(B * T, st.h)
        cos, sin = pos
        for li, ws in enumerate(st.layers):
            x = compiled(x, ws, kv[li], cos, sin, B, T, causal)
        last = x.view(B, T, st.h)[:, -1]
        return F.linear(st.norm(last, st.nf), st.lm_head).argmax(-1)
    for kind, B, T, L in ([("decode", b, 1, l) for b, l in decode]
                          + [("prefill", 1, t, t) for t in prefill]):
        t0 = time.perf_counter()
        try:
            kv = [(torch.empty(B, st.kvh, L, st.hd, device=DEV, dtype=torch.bfloat16).normal_(),
                   torch.empty(B, st.kvh, L, st.hd, device=DEV, dtype=torch.bfloat16).normal_())
                  for _ in range(st.n_layers)]
            ids = torch.randint(0, st.vocab, (B, T), device=DEV)
            ang = torch.rand(T, 1, half, device=DEV)
            cs = (torch.cat((ang.cos(), ang.cos()), -1).to(torch.bfloat16),
                  torch.cat((ang.sin(), ang.sin()), -1).to(torch.bfloat16))

            def step():
                return forward(ids, kv, cs, kind == "prefill")
            step()
            torch.cuda.synchronize()
            compile_s = time.perf_counter() - t0
            g = graph_of(step)
            graph = timed_replays(g, 1, outer=10)
            del g
            rows.append({"phase": kind, "weights": "fp8" if fp8 else "bf16", "batch": B,
                         "tokens": T, "context": L, "graph_ms": graph,
                         "compile_s": round(compile_s, 1)})
            log(f"  compiled {kind} B={B} T={T} L={L}: graph {graph:.3f} ms "
                f"(compile {compile_s:.0f} s)")
        except Exception as e:
            log(f"  compiled {kind} B={B} failed: {str(e)[:300]}")
            rows.append({"phase": kind, "batch": B, "tokens": T, "error": str(e)[:500]})
        kv = None
        torch.cuda.empty_cache()
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default="catalogs/models/llama-3.1-8b.json")
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true", help="a few shapes only (smoke test)")
    ap.add_argument("--skip", default="", help="comma list of sections to skip")
    ap.add_argument("--tp", type=int, default=1, help="time one rank of this TP size")
    ap.add_argument("--only", default="", help="comma list: run only these sections")
    ap.add_argument("--layers", type=int, default=0, help="use this many decoder layers")
    ap.add_argument("--smoke-cpu", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    with open(args.config) as f:
        cfg = tp_rank_config(json.load(f), args.tp)
    if args.layers:
        cfg["num_hidden_layers"] = args.layers
    if args.smoke_cpu:
        smoke_cpu(cfg)
        return 0
    skip = set(filter(None, args.skip.split(",")))
    q = args.quick
    data: dict = {"config": os.path.basename(args.config), "tp": args.tp,
                  "layers": cfg["num_hidden_layers"], "env": env_info(), "errors": {}}
    only = set(filter(None, args.only.split(",")))
    log(f"env: {data['env']}")
    tokens = [1, 8, 64] if q else [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096,
                                   8192]
    sections = [
        ("warm_clocks", lambda: warm_clocks()),
        ("copy", lambda: copy_bandwidth()),
        ("gemm_bf16", lambda: gemms(cfg, tokens, fp8=False)),
        ("gemm_fp8", lambda: gemms(cfg, tokens, fp8=True)),
        ("fp8_recipes", lambda: fp8_recipes(cfg, [16, 64, 256, 1024, 2048, 4096, 8192])),
        ("decode_attention", lambda: decode_attention(
            cfg, [1, 4] if q else [1, 4, 16, 64, 256],
            [1024] if q else [1024, 4096, 16384, 32768])),
        ("stack_bf16", lambda: stack_steps(
            cfg, False, [(1, 1024)] if q else
            [(1, 1024), (8, 1024), (32, 1024), (64, 1024), (128, 1024), (256, 1024),
             (1, 4096), (16, 4096), (64, 4096), (1, 32768)],
            [256] if q else [512, 2048, 8192])),
        ("stack_fp8", lambda: stack_steps(
            cfg, True, [(16, 1024)] if q else
            [(16, 1024), (32, 1024), (64, 1024), (128, 1024), (256, 1024), (64, 4096)],
            [] if q else [2048, 8192])),
        ("stack_kernels", lambda: stack_kernels(cfg, [1] if q else [1, 64, 256])),
        ("stack_compiled", lambda: stack_compiled(
            cfg, [(1, 1024)] if q else [(1, 1024), (32, 1024), (128, 1024), (256, 1024)],
            [] if q else [2048])),
        # per-rank prefill and decode of a TP-sliced model (run with --tp N --only ...)
        ("rank_compiled_bf16", lambda: stack_compiled(
            cfg, [(4, 2048), (16, 2048), (64, 2048)], [1024, 2048, 4096, 8192])),
        ("rank_compiled_fp8", lambda: stack_compiled(
            cfg, [(4, 2048), (16, 2048), (64, 2048)], [1024, 2048, 4096, 8192], fp8=True)),
    ]
    for name, fn in sections:
        if name in skip or (only and name not in only) or (
                not only and (name.startswith("rank_") or name == "fp8_recipes")):
            continue
        log(f"== {name}")
        t0 = time.perf_counter()
        try:
            data[name] = fn()
        except Exception as e:          # keep the other sections' results
            data["errors"][name] = traceback.format_exc()[-2000:]
            log(f"  {name} failed: {e}")
            torch.cuda.empty_cache()
        data.setdefault("section_s", {})[name] = round(time.perf_counter() - t0, 1)
        save(args.out, data)
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
