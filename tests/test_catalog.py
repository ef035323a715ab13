"""GPU catalog and price sheets: bundled data is complete and sourced; bad input is named."""

from __future__ import annotations

import pytest

from hetplan.catalog import load_catalog, load_gpus, load_price_sheet
from hetplan.errors import InputError

REQUIRED_GPUS = ["H100-SXM", "H100-PCIe", "H200", "B200", "GB200", "A100-40G-SXM",
                 "A100-80G-SXM", "A100-40G-PCIe", "A100-80G-PCIe", "L40S", "L4", "A10G",
                 "RTX-4090", "RTX-5090", "RTX-6000-Ada", "RTX-PRO-6000-Blackwell", "MI300X",
                 "MI325X", "Gaudi3"]


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_bundled_catalog_has_required_gpus(catalog):
    missing = [g for g in REQUIRED_GPUS if g not in catalog.gpus]
    assert not missing
    assert len(catalog.gpus) >= 18


def test_every_figure_is_sourced(catalog):
    for g in catalog.gpus.values():
        assert "memory_gb" in g.sources and g.sources["memory_gb"] in catalog.references
        assert "dense_tflops" in g.sources or all(f"dense_tflops.{d}" in g.sources
                                                  for d in g.dense_tflops)


def test_dense_tflops_are_plausible(catalog):
    """Dense, not sparse: H100 SXM bf16 is ~989 TFLOPS (sparse would be ~1979)."""
    h100 = catalog.gpu("H100-SXM")
    assert h100.tflops("bf16") == pytest.approx(989, rel=0.02)
    assert h100.tflops("fp8") == pytest.approx(2 * h100.tflops("bf16"), rel=0.02)
    assert h100.mem_bw_tbps == pytest.approx(3.35)
    for g in catalog.gpus.values():
        if "fp8" in g.dense_tflops and "bf16" in g.dense_tflops:
            assert g.dense_tflops["fp8"] >= g.dense_tflops["bf16"]


def test_ampere_has_no_fp8(catalog):
    for g in catalog.gpus.values():
        if g.architecture == "ampere":
            assert not g.supports("fp8"), g.name


def test_seed_prices(catalog):
    seed = {o.gpu: o.price_usd_per_hour for o in catalog.offers("2026-04-17-seed")}
    assert seed["H100-SXM"] == 2.57
    assert seed["B200"] == 7.43
    assert seed["L40S"] == 0.72
    assert seed["A100-80G-PCIe"] == 1.04


def test_every_price_sheet_offer_names_a_reference(catalog):
    for sheet in catalog.price_sheets.values():
        assert sheet.as_of
        for o in sheet.offers:
            assert o.source in sheet.references


def test_unknown_gpu_suggests_close_names(catalog):
    with pytest.raises(InputError, match="did you mean H100-SXM"):
        catalog.gpu("H100-SXN")


GOOD_GPU = """
references: {{ds: "a datasheet"}}
gpus:
  X1:
    vendor: nvidia
    architecture: hopper
    memory_gb: 80
    mem_bw_tbps: {bw}
    dense_tflops: {{bf16: 100}}
    intra_node_link: nvlink4
    intra_node_bw_gb_per_s: 900
    max_gpus_per_node: 8
    tdp_w: 700
    sources: {{memory_gb: ds, mem_bw_tbps: ds, dense_tflops: ds, intra_node_bw_gb_per_s: ds,
               max_gpus_per_node: ds, tdp_w: {tdp_src}}}
"""


def test_small_catalog_loads(write):
    gpus, refs = load_gpus(write("g.yaml", GOOD_GPU.format(bw=2.0, tdp_src="ds")))
    assert gpus["X1"].mem_bw_bytes_per_s == 2.0e12
    assert gpus["X1"].link_bytes_per_s_per_direction == 450e9
    assert refs == {"ds": "a datasheet"}


def test_negative_bandwidth_names_field(write):
    p = write("g.yaml", GOOD_GPU.format(bw=-1, tdp_src="ds"))
    with pytest.raises(InputError) as e:
        load_gpus(p)
    assert "gpus.X1.mem_bw_tbps" in str(e.value) and "g.yaml" in str(e.value)


def test_missing_field_names_field(write):
    p = write("g.yaml", GOOD_GPU.format(bw=2, tdp_src="ds").replace("    tdp_w: 700\n", ""))
    with pytest.raises(InputError, match=r"gpus\.X1\.tdp_w"):
        load_gpus(p)


def test_unknown_reference_rejected(write):
    p = write("g.yaml", GOOD_GPU.format(bw=2, tdp_src="nope"))
    with pytest.raises(InputError, match="'nope' is not a key of 'references'"):
        load_gpus(p)


def test_unsourced_figure_rejected(write):
    p = write("g.yaml", GOOD_GPU.format(bw=2, tdp_src="ds").replace(", tdp_w: ds", ""))
    with pytest.raises(InputError, match=r"gpus\.X1\.tdp_w: figure has no source"):
        load_gpus(p)


def test_yaml_syntax_error_names_line(write):
    p = write("g.yaml", "gpus:\n  X1: [unclosed\n")
    with pytest.raises(InputError, match=r"g\.yaml: YAML syntax error at line \d+"):
        load_gpus(p)


def test_price_sheet_unknown_gpu(write):
    gpus, _ = load_gpus(write("g.yaml", GOOD_GPU.format(bw=2, tdp_src="ds")))
    p = write("prices/s.yaml", """
as_of: "2026-01-01"
references: {r: "a price page"}
offers:
  - {gpu: X2, provider: p, price_usd_per_hour: 1.0, source: r}
""")
    with pytest.raises(InputError, match=r"offers\.0\.gpu: unknown GPU 'X2'"):
        load_price_sheet(p, gpus)


def test_price_sheet_negative_price(write):
    gpus, _ = load_gpus(write("g.yaml", GOOD_GPU.format(bw=2, tdp_src="ds")))
    p = write("prices/s.yaml", """
as_of: 2026-01-01
references: {r: "a price page"}
offers:
  - {gpu: X1, provider: p, price_usd_per_hour: -1.0, source: r}
""")
    with pytest.raises(InputError, match=r"offers\.0\.price_usd_per_hour"):
        load_price_sheet(p, gpus)
