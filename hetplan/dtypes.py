"""Numeric formats used for weights, KV cache and compute, with their storage size.

Bytes per element are storage sizes; block-scaled 4-bit formats (MXFP4, NVFP4) carry one
8-bit scale per 32 (MX) or 16 (NV) elements, which we round to 4.25 bits/element.
"""

from __future__ import annotations

from typing import Literal

Dtype = Literal["bf16", "fp16", "fp8", "int8", "fp4"]
DTYPES: tuple[str, ...] = ("bf16", "fp16", "fp8", "int8", "fp4")

BYTES_PER_ELEMENT: dict[str, float] = {
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "fp4": 4.25 / 8.0,  # 4-bit values + shared 8-bit block scales (approximate, see module doc)
}

# Compute dtype used for matmuls when weights are stored in `dtype`. Weight-only formats
# are not modelled yet: each weight dtype computes in its own precision when the GPU
# supports it (W8A8 / W4A4-style kernels).
COMPUTE_DTYPE: dict[str, str] = {d: d for d in DTYPES}


def bytes_per_element(dtype: str) -> float:
    try:
        return BYTES_PER_ELEMENT[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}") from None
