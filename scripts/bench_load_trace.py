"""Benchmark: write a large trace CSV (10M rows by default) to /tmp, then load it with
`load_trace` in a fresh process and print the wall time and peak RSS.

    python3 scripts/bench_load_trace.py [--rows 10000000] [--format generic|azure] [--keep]

`generic` writes arrival_s,input_tokens,output_tokens; `azure` writes the Azure layout
(TIMESTAMP with 7 fractional digits), which also times datetime parsing. One row in a
million is made bad (negative tokens) so the bad-row path is exercised. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def write_trace(path: Path, rows: int, fmt: str, seed: int = 0, chunk: int = 1_000_000) -> None:
    rng = np.random.Generator(np.random.PCG64(seed))
    t0 = 0.0
    with open(path, "w", encoding="utf-8") as f:
        f.write("TIMESTAMP,ContextTokens,GeneratedTokens\n" if fmt == "azure"
                else "arrival_s,input_tokens,output_tokens\n")
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            arr = t0 + np.cumsum(rng.exponential(0.01, n))
            t0 = float(arr[-1])
            inp = np.rint(rng.lognormal(np.log(1000), 1.0, n)).astype(np.int64) + 1
            out = np.rint(rng.lognormal(np.log(130), 1.0, n)).astype(np.int64) + 1
            inp[::1_000_000] = -1                     # one bad row per million
            if fmt == "azure":
                stamps = np.datetime64("2023-11-16T18:00:00", "us") + (arr * 1e6).astype(
                    "timedelta64[us]")
                t = np.char.add(np.char.replace(np.datetime_as_string(stamps, unit="us"), "T",
                                                " "), "0")
            else:
                t = np.char.mod("%.6f", arr)
            lines = np.char.add(np.char.add(np.char.add(np.char.add(t, ","), inp.astype(str)),
                                            ","), out.astype(str))
            f.write("\n".join(lines.tolist()) + "\n")


def _status_kb(key: str) -> int:
    """A field of /proc/self/status in kB (Linux). VmHWM is this process image's peak RSS;
    unlike getrusage's ru_maxrss it does not carry over the forking parent's peak."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def load_child(path: str) -> None:
    """Runs in a fresh interpreter: import, note RSS, load, note time and peak RSS."""
    from hetplan.workload import load_trace
    base_kb = _status_kb("VmRSS")
    t = time.perf_counter()
    tr = load_trace(path, warn=False, progress=False)
    el = time.perf_counter() - t
    peak_kb = _status_kb("VmHWM")
    arrays_mb = sum(a.nbytes for a in (tr.arrival_s, tr.input_tokens, tr.output_tokens)) / 1e6
    print(json.dumps({"rows_kept": tr.num_requests, "bad_rows": tr.report.bad_rows,
                      "load_s": round(el, 2), "rss_after_import_mb": round(base_kb / 1024),
                      "peak_rss_mb": round(peak_kb / 1024), "arrays_mb": round(arrays_mb)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--format", choices=["generic", "azure"], default="generic")
    ap.add_argument("--path", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the generated file")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        load_child(a.child)
        return
    path = Path(a.path or f"/tmp/hetplan_bench_{a.format}_{a.rows}.csv")
    t = time.perf_counter()
    if not path.exists():
        write_trace(path, a.rows, a.format)
    print(f"trace: {path} ({path.stat().st_size / 1e6:,.0f} MB, {a.rows:,} rows, "
          f"{a.format}); written in {time.perf_counter() - t:.1f} s")
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": f"{repo}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    r = subprocess.run([sys.executable, __file__, "--child", str(path)], env=env,
                       capture_output=True, text=True, check=True)
    res = json.loads(r.stdout.strip().splitlines()[-1])
    print(f"load_trace: {res['load_s']} s, {res['rows_kept']:,} rows kept, "
          f"{res['bad_rows']} bad; peak RSS {res['peak_rss_mb']} MB "
          f"(after imports {res['rss_after_import_mb']} MB; kept arrays {res['arrays_mb']} MB)")
    if not a.keep:
        path.unlink()


if __name__ == "__main__":
    main()
