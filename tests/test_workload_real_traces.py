"""Public traces, when a copy is present (HETPLAN_TRACES_DIR, else ../shared/traces next to
the repository); skipped otherwise. Only the first rows of each file are read."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from hetplan.workload import detect_format, load_trace

REPO = Path(__file__).resolve().parent.parent
TRACES = Path(os.environ.get("HETPLAN_TRACES_DIR", REPO.parent / "shared" / "traces"))
PATTERNS = {"azure": ["**/AzureLLMInferenceTrace*.csv*"],
            "mooncake": ["**/*mooncake*.jsonl*", "**/*_trace.jsonl*"],
            "burstgpt": ["**/BurstGPT*.csv*"]}
FOUND = sorted({(fmt, p) for fmt, pats in PATTERNS.items() for pat in pats
                for p in (TRACES.glob(pat) if TRACES.is_dir() else [])})


@pytest.mark.skipif(not FOUND, reason=f"no public traces under {TRACES}")
@pytest.mark.parametrize("fmt,path", FOUND, ids=lambda x: getattr(x, "name", x))
def test_real_trace_loads(fmt, path):
    assert detect_format(path) == fmt
    t = load_trace(path, max_rows=200_000, warn=False)
    r = t.report
    assert t.num_requests == r.rows_kept > 0
    assert r.rows_kept + r.bad_rows + r.failed_requests == r.rows_read
    assert np.all(np.diff(t.arrival_s) >= 0) and t.arrival_s[0] == 0
    assert t.input_tokens.min() >= 0 and t.output_tokens.min() >= 1
    if fmt == "mooncake":
        assert t.prefix_tokens is not None and np.all(t.prefix_tokens <= t.input_tokens)
