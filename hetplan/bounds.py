"""Documented limits on every input: one place that says how large, small or odd a number or
a name may be before hetplan refuses it with a one-line input error.

The limits are generous (far beyond any real fleet, trace or model) and exist so that a
typo or a hostile file fails at load time naming its field, instead of hanging, allocating
gigabytes or ending in a traceback. Schemas import the annotated types below (`RateRps`,
`TokenCount`, `SafeName`, ...); code that generates or reads data imports the constants.
Every float must also be finite: NaN and infinity are refused everywhere.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

# ---- numbers ------------------------------------------------------------------------------
MAX_RATE_RPS = 1e6                  # requests (or sessions) per second
MAX_DURATION_S = 1e9                # a synthetic workload, a trace's span, a think time (~31 y)
MAX_ABS_TIME_S = 1e11               # an arrival time before shifting (epoch seconds fit)
MIN_WINDOW_S = 1e-3                 # a rate window
MAX_RATE_WINDOWS = 10_000_000       # windows of one rate computation (span / window)
MAX_SYNTHETIC_REQUESTS = 5_000_000  # requests one synthetic spec may generate
MAX_HORIZON_S = 7 * 86_400.0        # a capacity schedule's horizon (a week)
MIN_SLOT_S = 60.0                   # a schedule slot (per-minute billing is the finest)
DEFAULT_SLOT_S = 3_600.0            # a schedule slot unless asked otherwise (an hour)
MAX_TOKENS = 10_000_000             # tokens of one request (input, output, prefix, context)
MAX_LATENCY_MS = 1e7                # an SLO target or assumed TPOT (~2.8 h)
MAX_PRICE_USD_PER_HOUR = 1e5        # one GPU-hour
MAX_BUDGET_USD_PER_HOUR = 1e9       # a whole fleet
VALIDATE_ROUNDS = 16                # simulations `solve --validate` runs by default (the tuner)
MAX_GPU_COUNT = 1_000_000           # GPUs of one type (availability, offers)
MAX_GPUS_PER_NODE = 1024
MAX_NODES = 100_000                 # nodes of one inventory
# Planner size: candidates grow with classes x tp x pp; at these maxima one solve of the
# default scenario takes about a minute on 2 cores (8 x 8 classes, or tp 128 with pp 16).
MAX_TP = 128                        # tensor-parallel degree
MAX_DP = 128                        # data-parallel attention ranks inside one MoE replica
MAX_PP = 64                         # pipeline stages (enumerated only up to the model's layers and the GPUs available)
MAX_CLASSES_PER_AXIS = 8            # workload length bins per axis (8 x 8 classes)
MAX_BANDWIDTH_GBPS = 1e9            # NIC, fabric and link capacity, Gb/s
MAX_REPLICAS_PER_POOL = 10_000      # replicas of one pool in a plan.json (far above any solve)
MAX_BATCH = 1 << 20                 # concurrent sequences of one replica (plan routes, estimate)
MAX_TOKENS_PER_STEP = 1 << 20       # engine limits: any per-step token count
MAX_SEQS_PER_ENGINE = 1 << 16       # engine limits: max_num_seqs
MAX_SEED = 2**63 - 1                # numpy PCG64 takes seeds in [0, 2**63)
MAX_TURNS = 10_000                  # turns of one agentic session
# GPU datasheet figures
MAX_MEMORY_GB = 1e5
MAX_MEM_BW_TBPS = 1e3
MAX_TFLOPS = 1e7
MAX_INTRA_NODE_GB_PER_S = 1e6
MAX_TDP_W = 1e5
# model config.json figures
MAX_LAYERS = 10_000
MAX_MODEL_DIM = 10_000_000          # hidden, intermediate, head and LoRA-rank sizes
MAX_HEADS = 100_000
MAX_VOCAB = 100_000_000
MAX_EXPERTS = 100_000
MAX_CONTEXT_TOKENS = 1_000_000_000

# ---- files --------------------------------------------------------------------------------
MAX_YAML_BYTES = 8 * 2**20          # a scenario, catalog, price sheet, inventory or spec
MAX_YAML_NODES = 200_000            # YAML values after expanding aliases
MAX_YAML_DEPTH = 64                 # nesting of YAML mappings and lists
MAX_JSON_BYTES = 64 * 2**20         # a config.json or plan.json
MAX_JSON_DEPTH = 64

# ---- names --------------------------------------------------------------------------------
MAX_NAME_CHARS = 256
FILE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
ADDRESS_RE = re.compile(r"[A-Za-z0-9\[][A-Za-z0-9._:\[\]-]*")
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")   # C0, DEL, C1, line/paragraph separators


def has_control(v: str) -> bool:
    """Whether `v` holds a character that can end a line or a comment (see check_text)."""
    return _CONTROL_RE.search(v) is not None


def escape_control(v: str) -> str:
    """`v` with every control character written as a visible escape (`\\x0a`, `\\x1b`,
    `\\u2028`), so a value quoted in a message, a comment, a header or a hosts line can
    neither start a new line nor drive the terminal."""
    return _CONTROL_RE.sub(lambda m: (f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256
                                      else f"\\u{ord(m.group()):04x}"), v)


def check_text(v: str) -> str:
    """A name shown in scripts, comments and manifests: no control characters (newline,
    CR, NUL, other C0/C1 codes, DEL), not empty, at most MAX_NAME_CHARS."""
    bad = _CONTROL_RE.search(v)
    if bad:
        raise ValueError(f"control character {bad.group()!r} at position {bad.start()}")
    if not v.strip():
        raise ValueError("must not be empty")
    if len(v) > MAX_NAME_CHARS:
        raise ValueError(f"longer than {MAX_NAME_CHARS} characters")
    return v


def check_file_name(v: str) -> str:
    """A name that becomes (part of) a file name: letters, digits, '.', '_', '-'; starts with
    a letter or digit (so never '-x', '.', '..' or a hidden file); no '..'."""
    check_text(v)
    if not FILE_NAME_RE.fullmatch(v) or ".." in v:
        raise ValueError(f"{v!r} may hold only letters, digits, '.', '_' and '-', start with "
                         "a letter or digit and contain no '..' (it becomes a file name)")
    return v


def check_address(v: str) -> str:
    """A host name or IP address (IPv6 in brackets allowed); never starts with '-'."""
    check_text(v)
    if not ADDRESS_RE.fullmatch(v):
        raise ValueError(f"{v!r} is not a host name or IP address (letters, digits, '.', "
                         "'-', '_', ':', '[', ']')")
    return v


def check_unique(v: list) -> list:
    """A list that names each item once (a GPU, role or dtype listed twice would be planned
    twice: two solver variables for one candidate)."""
    seen = set()
    for i, x in enumerate(v):
        if x in seen:
            raise ValueError(f"{getattr(x, 'value', x)!r} is listed twice (item {i})")
        seen.add(x)
    return v


Unique = AfterValidator(check_unique)
Text = Annotated[str, AfterValidator(check_text)]
MaybeText = Annotated[str, AfterValidator(lambda v: check_text(v) if v else v)]  # "" allowed
SafeName = Annotated[str, AfterValidator(check_file_name)]
Address = Annotated[str, AfterValidator(check_address)]


def _float(gt: float | None = None, ge: float | None = None, le: float | None = None,
           lt: float | None = None):
    return Field(gt=gt, ge=ge, le=le, lt=lt, allow_inf_nan=False)


RateRps = Annotated[float, _float(gt=0.0, le=MAX_RATE_RPS)]
DurationS = Annotated[float, _float(gt=0.0, le=MAX_DURATION_S)]
NonNegDurationS = Annotated[float, _float(ge=0.0, le=MAX_DURATION_S)]
WindowS = Annotated[float, _float(ge=MIN_WINDOW_S, le=MAX_DURATION_S)]
LatencyMs = Annotated[float, _float(gt=0.0, le=MAX_LATENCY_MS)]
PriceUsdPerHour = Annotated[float, _float(gt=0.0, le=MAX_PRICE_USD_PER_HOUR)]
BudgetUsdPerHour = Annotated[float, _float(gt=0.0, le=MAX_BUDGET_USD_PER_HOUR)]
BandwidthGbps = Annotated[float, _float(gt=0.0, le=MAX_BANDWIDTH_GBPS)]
Fraction = Annotated[float, _float(ge=0.0, le=1.0)]
FiniteFloat = Annotated[float, _float(ge=-MAX_DURATION_S, le=MAX_DURATION_S)]
TokenCount = Annotated[int, Field(ge=1, le=MAX_TOKENS)]
TokenLength = Annotated[float, _float(gt=0.0, le=MAX_TOKENS)]
GpuCount = Annotated[int, Field(ge=0, le=MAX_GPU_COUNT)]
GpusPerNode = Annotated[int, Field(ge=1, le=MAX_GPUS_PER_NODE)]
TpDegree = Annotated[int, Field(ge=1, le=MAX_TP)]
PpDegree = Annotated[int, Field(ge=1, le=MAX_PP)]
ClassesPerAxis = Annotated[int, Field(ge=1, le=MAX_CLASSES_PER_AXIS)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]


def synthetic_requests_message(expected: float) -> str:
    """The error for a synthetic workload over MAX_SYNTHETIC_REQUESTS: how to lower it."""
    return (f"would generate about {expected:,.0f} requests, more than the limit of "
            f"{MAX_SYNTHETIC_REQUESTS:,}; lower arrival.rate_rps or duration_s (or the "
            "agentic turns per session)")
