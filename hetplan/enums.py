"""Closed vocabularies shared by every stage: replica roles, solver statuses, solvers and emit
targets. Each is a `StrEnum`, so a member equals, formats and serialises (JSON, YAML, CLI
options) as its plain string value: plan.json and comparisons with literals are unchanged."""

from __future__ import annotations

from enum import StrEnum

import yaml


class Role(StrEnum):
    """What a replica does: prefill only, decode only, or both (colocated)."""

    PREFILL = "prefill"
    DECODE = "decode"
    COLOCATED = "colocated"


ROLES: tuple[Role, ...] = tuple(Role)       # the canonical order pools are listed in


class SolveStatus(StrEnum):
    """A solver run's outcome; OPTIMAL and FEASIBLE carry a solution (FEASIBLE: stopped at
    the time limit with a gap)."""

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    NO_SOLUTION = "no_solution"
    ERROR = "error"


class Solver(StrEnum):
    """MILP back ends `--solver` accepts."""

    HIGHS = "highs"
    CBC = "cbc"
    ORTOOLS = "ortools"


class Sizing(StrEnum):
    """How the MILP sizes a pool: `queueing` (the load n replicas carry with the SLO
    percentile met, `hetplan.slo_capacity`) or `utilization` (capacity x one target rho)."""

    QUEUEING = "queueing"
    UTILIZATION = "utilization"


# queueing is the default: plain solve then meets the simulated SLO percentile on the shipped
# scenarios (except bursts it flags), and the staged exact solve (hetplan.milp.staged) brings
# every shipped scenario to a proven optimum in <= ~30 s on a loaded 2-core machine. Not yet
# met: scripts/bench_solve.py's 20 GPU x 64 class instance takes ~126 CPU-s to optimal (the
# utilization model: ~22 CPU-s); `constraints.sizing: utilization` keeps the old model.
DEFAULT_SIZING = Sizing.QUEUEING
# plans that record no sizing were sized by utilization (before queueing sizing existed)
UNRECORDED_SIZING = Sizing.UTILIZATION


class EmitTarget(StrEnum):
    """Config sets `hetplan emit --target` writes."""

    VLLM = "vllm"
    K8S = "k8s"
    DYNAMO = "dynamo"
    LLMD = "llm-d"


def _represent_str_enum(dumper: yaml.SafeDumper, value: StrEnum) -> yaml.ScalarNode:
    return dumper.represent_str(value.value)


# Safe YAML writes these as the plain strings they are (generated configs stay the same).
yaml.SafeDumper.add_multi_representer(StrEnum, _represent_str_enum)
