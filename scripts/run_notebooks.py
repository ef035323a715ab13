#!/usr/bin/env python3
"""Execute the what-if notebooks under notebooks/ with nbclient.

    python scripts/run_notebooks.py            # run every notebook, report time per notebook
    python scripts/run_notebooks.py --write    # ... and save the outputs in place (commit them)
    python scripts/run_notebooks.py notebooks/02_workload_shift.ipynb --write

The kernel is this interpreter: a temporary kernel spec pointing at sys.executable. No
`ipykernel install` is needed either way (ipykernel's wheel ships a `python3` spec whose
`python` jupyter_client replaces with sys.executable), but a private spec also ignores any
`python3` spec another environment installed under a Jupyter path. It runs in the
notebook's folder with this checkout first on PYTHONPATH. Timing
metadata is not recorded, so re-running unchanged code on unchanged data writes the same
file. tests/test_notebooks.py uses `execute` from here.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
KERNEL = "hetplan-python"


@contextlib.contextmanager
def kernel_spec():
    """A kernel spec named KERNEL for this interpreter, visible through JUPYTER_PATH."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "kernels" / KERNEL
        d.mkdir(parents=True)
        (d / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "hetplan (this interpreter)", "language": "python"}))
        old = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = os.pathsep.join([tmp] + ([old] if old else []))
        try:
            yield KERNEL
        finally:
            if old is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = old


def execute(path: Path, timeout_s: int = 300):
    """Run every cell of the notebook at `path`; return the executed NotebookNode (raises
    nbclient's CellExecutionError on the first failing cell)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]]
                                                       if env.get("PYTHONPATH") else []))
    env.setdefault("MPLBACKEND", "Agg")
    with kernel_spec() as name:
        client = NotebookClient(nb, timeout=timeout_s, kernel_name=name, record_timing=False,
                                resources={"metadata": {"path": str(path.parent)}})
        client.execute(env=env)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", type=Path)
    ap.add_argument("--write", action="store_true", help="save the outputs in place")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per cell")
    a = ap.parse_args()
    import nbformat

    from hetplan.io import write_atomic
    total = 0.0
    for p in a.paths or sorted(NOTEBOOKS.glob("*.ipynb")):
        t0 = time.perf_counter()
        nb = execute(p.resolve(), a.timeout)
        dt = time.perf_counter() - t0
        total += dt
        print(f"{p.name}: {dt:.1f} s")
        if a.write:
            write_atomic(p, nbformat.writes(nb) + "\n")
    print(f"total: {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
