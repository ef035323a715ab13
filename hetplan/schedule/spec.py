"""The scenario's `schedule` block: slots, horizon, rate shape, change limits, warm-up,
spot risk and committed-capacity terms. Every default is documented here, once.

Assumptions (stated, not measured; override them per scenario):
- Warm-up: a replica loads its weights at DEFAULT_LOAD_GB_PER_S per GPU (each GPU reads
  its own shard, from local NVMe or a nearby object store) and then needs
  DEFAULT_ENGINE_START_S to start the engine (process start, CUDA graphs, warm-up
  requests) before it serves.
- Spot: where the price sheet publishes no interruption rate, a spot GPU is preempted
  DEFAULT_SPOT_PREEMPTIONS_PER_HOUR times an hour (one every ten hours: marketplace
  interruptible capacity is outbid far more often than hyperscaler spot). A preempted
  replica is lost for its warm-up plus DEFAULT_SPOT_REACQUIRE_S to get a new GPU; spot
  capacity is derated by that expected loss, and at most DEFAULT_MAX_SPOT_SHARE of a
  slot's GPUs are spot, so a correlated reclaim of all of them leaves the rest serving.
  Under queueing sizing a pool holding spot replicas is also topped up until it meets the
  SLO with one of them down (`schedule/sizing.py`).
- Owned hardware: capex amortized over DEFAULT_AMORTIZATION_YEARS, powered at
  DEFAULT_POWER_USD_PER_KWH x the GPU's TDP x DEFAULT_PUE (cooling and host overhead).
- Change limits: between consecutive slots a pool may grow or shrink by at most
  DEFAULT_MAX_STEP_REPLICAS replicas plus DEFAULT_MAX_STEP_SHARE of its size.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hetplan.bounds import DEFAULT_SLOT_S, MAX_HORIZON_S, MIN_SLOT_S
from hetplan.workload.profile import RateShape

DEFAULT_LOAD_GB_PER_S = 2.0              # weights read per GPU, GB/s
DEFAULT_ENGINE_START_S = 90.0            # engine start after the weights are in, s
DEFAULT_SPOT_PREEMPTIONS_PER_HOUR = 0.1  # where the sheet has no published rate
DEFAULT_SPOT_REACQUIRE_S = 300.0         # to get a replacement spot GPU, s
DEFAULT_MAX_SPOT_SHARE = 0.5             # of a slot's GPUs
DEFAULT_AMORTIZATION_YEARS = 4.0         # owned GPUs
DEFAULT_POWER_USD_PER_KWH = 0.10         # owned GPUs' electricity
DEFAULT_PUE = 1.3                        # facility + host power per watt of GPU TDP
DEFAULT_MAX_STEP_REPLICAS = 4            # replicas a pool may add or drop between slots ...
DEFAULT_MAX_STEP_SHARE = 0.5             # ... plus this share of its size
DEFAULT_REPRESENTATIVE_SLOTS = 4         # per-slot plans that choose the schedule's candidates
Tier = Literal["on_demand", "spot", "reserved", "owned"]
TIERS: tuple[str, ...] = ("on_demand", "spot", "reserved", "owned")
COMMITTED_TIERS = ("reserved", "owned")


class ScheduleSpec(BaseModel):
    """`schedule:` in a scenario (every field optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    slot_s: float = Field(default=DEFAULT_SLOT_S, ge=MIN_SLOT_S, le=MAX_HORIZON_S)
    horizon_s: float | None = Field(default=None, gt=0.0, le=MAX_HORIZON_S)
    # A synthetic rate over time; None: the profile of the scenario's workload trace.
    profile: RateShape | None = None
    # Planning rate inside each slot (None: the workload's planning_rate and window).
    planning_rate: str | None = None
    # The horizon repeats (a day or a week of a steady pattern): the first slot follows
    # the last for change limits and warm-ups.
    cyclic: bool = True
    tiers: list[Tier] = Field(default=list(TIERS), min_length=1)
    max_step_replicas: int = Field(default=DEFAULT_MAX_STEP_REPLICAS, ge=0, le=100_000)
    max_step_share: float = Field(default=DEFAULT_MAX_STEP_SHARE, ge=0.0, le=100.0)
    load_gb_per_s: float = Field(default=DEFAULT_LOAD_GB_PER_S, gt=0.0, le=1e4)
    engine_start_s: float = Field(default=DEFAULT_ENGINE_START_S, ge=0.0, le=86_400.0)
    spot_preemptions_per_hour: float = Field(default=DEFAULT_SPOT_PREEMPTIONS_PER_HOUR,
                                             ge=0.0, le=100.0)
    spot_reacquire_s: float = Field(default=DEFAULT_SPOT_REACQUIRE_S, ge=0.0, le=86_400.0)
    max_spot_share: float = Field(default=DEFAULT_MAX_SPOT_SHARE, ge=0.0, le=1.0)
    amortization_years: float = Field(default=DEFAULT_AMORTIZATION_YEARS, gt=0.0, le=30.0)
    power_usd_per_kwh: float = Field(default=DEFAULT_POWER_USD_PER_KWH, ge=0.0, le=10.0)
    pue: float = Field(default=DEFAULT_PUE, ge=1.0, le=5.0)
    representative_slots: int = Field(default=DEFAULT_REPRESENTATIVE_SLOTS, ge=1, le=10_080)
    # Queueing sizing: the TTFT percentile each slot's pools are checked and topped up at
    # (`schedule/sizing.py`); None: the SLO's. A higher one buys headroom in every slot.
    sizing_percentile: float | None = Field(default=None, gt=0.0, lt=100.0)

    @field_validator("planning_rate")
    @classmethod
    def _rate_spec(cls, v: str | None) -> str | None:
        from hetplan.workload.trace import parse_planning_rate
        if v is not None:
            parse_planning_rate(v)
        return v

    @field_validator("tiers")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        from hetplan.bounds import check_unique
        return check_unique(v)

    def assumptions(self) -> list[str]:
        """The stated figures a schedule rests on, for its report."""
        return [f"warm-up: weights at {self.load_gb_per_s:g} GB/s per GPU + "
                f"{self.engine_start_s:g} s engine start",
                f"spot: {self.spot_preemptions_per_hour:g} preemptions/h where the sheet has "
                f"no rate; {self.spot_reacquire_s:g} s to reacquire; at most "
                f"{100 * self.max_spot_share:g}% of a slot's GPUs",
                f"owned: capex over {self.amortization_years:g} years + TDP x PUE "
                f"{self.pue:g} at ${self.power_usd_per_kwh:g}/kWh",
                f"change limit: {self.max_step_replicas} replicas + "
                f"{100 * self.max_step_share:g}% of a pool per slot"
                + (" (cyclic horizon)" if self.cyclic else "")]
