"""The what-if notebooks run top to bottom on the default catalogs (nbclient, a kernel on
this interpreter), their summary tables have the expected columns, and the committed
copies are executed (outputs and plots included)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

nbformat = pytest.importorskip("nbformat", reason="pip install '.[dev]' for notebook tests")
pytest.importorskip("nbclient", reason="pip install '.[dev]' for notebook tests")
pytest.importorskip("ipykernel", reason="pip install '.[dev]' for notebook tests")

from run_notebooks import execute  # noqa: E402

SUMMARY_COLUMNS = {
    "01_price_shock.ipynb": ["gpu", "cost_share_at_1x", "elasticity", "mix_changes_at_factor"],
    "02_workload_shift.ipynb": ["workload", "golden_ratio", "prefill_cost_share",
                                "usd_per_million_tokens"],
    "03_slo_pareto.ipynb": ["ttft_ms", "tpot_ms", "cost_usd_per_hour", "premium"],
    "04_cross_vendor.ipynb": ["published_B200:Gaudi3_x", "hetplan_B200:Gaudi3_x",
                              "hetplan_B200:MI300X_x", "hetplan_any_x"],
    "05_schedule.ipynb": ["discount", "committed_gpus", "horizon_cost_usd",
                          "committed_gpu_h_share"],
}


def _summary_html(nb) -> str:
    cells = [c for c in nb.cells if "summary" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "one code cell tagged 'summary'"
    html = [o["data"]["text/html"] for o in cells[0].outputs
            if o.get("output_type") == "execute_result" and "text/html" in o.get("data", {})]
    assert html, "the summary cell shows a table"
    return html[0]


def _pngs(nb) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
               for o in c.outputs)


def test_every_notebook_is_listed():
    assert sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb")) == sorted(
        SUMMARY_COLUMNS)


@pytest.mark.parametrize("name", sorted(SUMMARY_COLUMNS))
def test_committed_notebook_is_executed(name):
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count for c in code)
    assert not any(o.get("output_type") == "error" for c in code for o in c.outputs)
    assert _pngs(nb) >= 1
    for col in SUMMARY_COLUMNS[name]:
        assert col in _summary_html(nb)


@pytest.mark.parametrize("name", sorted(SUMMARY_COLUMNS))
def test_notebook_runs(name):
    nb = execute(ROOT / "notebooks" / name, timeout_s=240)   # raises on a failing cell
    html = _summary_html(nb)
    for col in SUMMARY_COLUMNS[name]:
        assert f"<th>{col}</th>" in html
    assert "NaN" not in html.split("</thead>")[-1]     # every plan in the summary exists
    assert _pngs(nb) >= 1
