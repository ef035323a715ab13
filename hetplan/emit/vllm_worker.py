"""Check command lines with vLLM's own parsers (and Dynamo's), and Kubernetes objects with
kubernetes-validate. Runs inside the vLLM venv (scripts/install_vllm_cpu.sh) as a plain
script: it imports only the standard library and what that venv installs, never hetplan.

stdin: a JSON list of {"kind": "serve" | "bench" | "router" | "dynamo" | "k8s" |
"dynamo-planner",
"argv": [...], "model_dir": ...}.
  serve: argv is what follows `vllm serve`; its first element (the model) is replaced by
         `model_dir`, a folder holding only the model's config.json. The arguments are parsed
         with `make_arg_parser`, validated as `vllm serve` does, and turned into an engine
         config with `AsyncEngineArgs.create_engine_config()` (tokenizer skipped).
  bench: argv is what follows `vllm bench serve`; parsed, and --random-range-ratio read as
         vLLM reads it when sampling (nothing is sent).
  router: argv is what follows `vllm-router`; parsed by vllm-router's own RouterArgs.
  dynamo: argv is what follows `python3 -m dynamo.vllm`; the value of --model is replaced by
         `model_dir` and the whole is parsed by Dynamo 1.6.1's `dynamo.vllm.args.parse_args`
         (its flags, vLLM's engine flags, and its cross-checks such as a prefill worker's
         required --kv-transfer-config). No stub is needed on a CPU-only machine.
  k8s:   argv is one Kubernetes object (a dict), validated against the OpenAPI schemas of
         Kubernetes K8S_VERSION in kubernetes-validate's strict mode (unknown fields refused).
  dynamo-planner: argv is a Dynamo planner config (a dict), validated by Dynamo 1.6.1's
         `PlannerConfig`; keys it does not define are refused (it would ignore them).
argv[1]: where to write a JSON list of {"ok", "error", "summary"}, in the same order.
"""

import contextlib
import io
import json
import os
import sys

os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


K8S_VERSION = "1.37.0"


class ParseError(Exception):
    pass


def _parse(parser, argv):
    """argparse prints and exits on a bad flag; turn that into an exception with its text."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return parser.parse_args(argv)
    except SystemExit:
        raise ParseError(_usage_error(err.getvalue())) from None


def _usage_error(text):
    """argparse's message without the usage block: from its 'PROG: error:' line on."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    first = next((i for i, ln in enumerate(lines) if ": error:" in ln), 0)
    return " ".join(lines[first:]) or "argument parsing failed"


def check_serve(parser, item):
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.entrypoints.common.cli_args import validate_parsed_serve_args

    argv = list(item["argv"])
    if item.get("model_dir"):
        argv[0] = item["model_dir"]
    ns = _parse(parser, argv)
    ns.model = ns.model_tag              # as `vllm serve` does with the positional model
    validate_parsed_serve_args(ns)
    engine_args = AsyncEngineArgs.from_cli_args(ns)
    engine_args.skip_tokenizer_init = True
    cfg = engine_args.create_engine_config()
    kv = cfg.kv_transfer_config
    return {"tensor_parallel_size": cfg.parallel_config.tensor_parallel_size,
            "pipeline_parallel_size": cfg.parallel_config.pipeline_parallel_size,
            "data_parallel_size": cfg.parallel_config.data_parallel_size,
            "data_parallel_size_local": cfg.parallel_config.data_parallel_size_local,
            "enable_expert_parallel": cfg.parallel_config.enable_expert_parallel,
            "max_model_len": cfg.model_config.max_model_len,
            "max_num_seqs": cfg.scheduler_config.max_num_seqs,
            "max_num_batched_tokens": cfg.scheduler_config.max_num_batched_tokens,
            "kv_cache_dtype": str(cfg.cache_config.cache_dtype),
            "quantization": cfg.model_config.quantization,
            "kv_connector": kv.kv_connector if kv else None,
            "kv_role": kv.kv_role if kv else None}


def check_bench(parser, item):
    from vllm.benchmarks.datasets.datasets import _parse_range_ratio
    from vllm.benchmarks.datasets.utils import _resolve_range_ratios

    ns = _parse(parser, list(item["argv"]))
    # as vLLM reads --random-range-ratio when it samples (a float or an input/output dict)
    ratios = _resolve_range_ratios(_parse_range_ratio(ns.random_range_ratio))
    if not all(0.0 <= r < 1.0 for r in ratios):
        raise ValueError(f"range ratios {ratios} outside [0, 1)")
    return {"dataset_name": ns.dataset_name, "metadata": ns.metadata,
            "save_result": ns.save_result, "range_ratios": list(ratios)}


def check_router(item):
    from vllm_router.launch_router import parse_router_args

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            a = parse_router_args(list(item["argv"]))
    except SystemExit:
        raise ParseError(_usage_error(err.getvalue())) from None
    return {"pd": a.vllm_pd_disaggregation, "prefill": [u for u, _ in a.prefill_urls],
            "decode": list(a.decode_urls), "workers": list(a.worker_urls)}


def check_dynamo(item):
    from dynamo.vllm.args import parse_args

    argv = list(item["argv"])
    if item.get("model_dir") and "--model" in argv:
        argv[argv.index("--model") + 1] = item["model_dir"]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            cfg = parse_args(argv)
    except SystemExit:
        raise ParseError(_usage_error(err.getvalue())) from None
    kv = cfg.engine_args.kv_transfer_config
    mode = cfg.disaggregation_mode
    return {"disaggregation_mode": str(getattr(mode, "value", mode)),
            "tensor_parallel_size": cfg.engine_args.tensor_parallel_size,
            "served_model_name": cfg.served_model_name,
            "kv_connector": kv.kv_connector if kv else None}


def check_dynamo_planner(item):
    import importlib.util
    import types
    # dynamo.planner's __init__ imports the planner runtime (scikit-learn, not in this
    # venv); its config module needs only pydantic, so load the package without __init__
    if "dynamo.planner" not in sys.modules:
        spec = importlib.util.find_spec("dynamo.planner")
        pkg = types.ModuleType("dynamo.planner")
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["dynamo.planner"] = pkg
    from dynamo.planner.config.planner_config import PlannerConfig, resolve_min_endpoint

    cfg = item["argv"]
    unknown = sorted(set(cfg) - set(PlannerConfig.model_fields))
    if unknown:
        raise ValueError(f"PlannerConfig has no field {', '.join(unknown)}")
    c = PlannerConfig.model_validate(cfg)
    out = {"mode": c.mode, "max_gpu_budget": c.max_gpu_budget}
    if c.mode == "agg":
        return {**out, "min_endpoint": c.min_endpoint}
    return {**out, **{f"{r}_min": resolve_min_endpoint(c, r) for r in ("prefill", "decode")}}


_K8S = {}


def check_k8s(item):
    if not _K8S:
        import functools

        import kubernetes_validate
        from kubernetes_validate import utils
        # each validate() call re-reads its schema files (the definitions are megabytes);
        # they do not change within a run, so read each once
        utils.schema_contents = functools.lru_cache(maxsize=None)(utils.schema_contents)
        _K8S["mod"] = kubernetes_validate
    kv = _K8S["mod"]
    doc = item["argv"]
    try:
        version = kv.validate(doc, K8S_VERSION, strict=True)
    except kv.ValidationError as e:
        where = "/".join(str(p) for p in e.path)
        raise ValueError(f"{doc.get('kind')} {where}: {e.message}") from None
    except kv.SchemaNotFoundError as e:
        raise ValueError(e.message) from None
    return {"version": version, "kind": doc["kind"]}


def main():
    items = json.load(sys.stdin)
    from vllm.benchmarks.serve import add_cli_args as add_bench_args
    from vllm.entrypoints.common.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    serve = make_arg_parser(FlexibleArgumentParser())
    bench = FlexibleArgumentParser()
    add_bench_args(bench)
    out = []
    for item in items:
        try:
            if item["kind"] == "serve":
                summary = check_serve(serve, item)
            elif item["kind"] == "router":
                summary = check_router(item)
            elif item["kind"] == "dynamo":
                summary = check_dynamo(item)
            elif item["kind"] == "k8s":
                summary = check_k8s(item)
            elif item["kind"] == "dynamo-planner":
                summary = check_dynamo_planner(item)
            else:
                summary = check_bench(bench, item)
            out.append({"ok": True, "error": None, "summary": summary})
        except Exception as e:  # noqa: BLE001  (every refusal is reported, not raised)
            msg = " ".join(str(e).split())
            out.append({"ok": False, "error": f"{type(e).__name__}: {msg}", "summary": None})
    with open(sys.argv[1], "w", encoding="utf-8") as f:   # stdout carries vLLM's logs
        json.dump(out, f)


if __name__ == "__main__":
    main()
