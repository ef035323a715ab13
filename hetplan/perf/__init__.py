"""Measured-roofline performance model (stage 4 of the pipeline).

`PerfModel` answers: how long does a prefill / decode / mixed step take for a replica shape,
how much VRAM is left for KV cache, and how long a KV hand-off takes over a link.
"""

from hetplan.perf.calibration import Calibration, default_calibration, load_calibrations
from hetplan.perf.estimator import MemoryFit, PerfModel
from hetplan.perf.links import Link, load_links
from hetplan.perf.shape import ReplicaShape, unsupported_reason

__all__ = ["Calibration", "default_calibration", "load_calibrations", "MemoryFit", "PerfModel",
           "Link", "load_links", "ReplicaShape", "unsupported_reason"]
