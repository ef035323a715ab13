"""Agentic (multi-turn) synthetic sessions: a system prompt shared by every session, a
context that grows turn by turn, short generations, and think / tool time between turns.

Session k's turn t (t = 1, 2, ...):
    input(1)   = system_prompt_tokens + first user message   (the spec's input_tokens)
    input(t+1) = input(t) + output(t) + new_tokens(t+1)        (tool result / follow-up)
    prefix(t+1) = input(t) + output(t)   (everything the previous turn already had in KV)
    prefix(1)  = system_prompt_tokens    (0 for the very first request of the trace)
    arrival(t+1) = arrival(t) + output(t) x assumed_tpot_ms + think_time

Assumptions, stated because they matter: the generator is open loop (a turn's response time
is the assumed TPOT x its output tokens, not what a planned fleet would deliver); a prefix
cache keeps the previous turn's whole context including its generated tokens; sessions stop
when the context would exceed max_context_tokens, and turns after `duration_s` are dropped.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from hetplan.bounds import (MAX_SYNTHETIC_REQUESTS, MAX_TOKENS, LatencyMs, TokenCount,
                            synthetic_requests_message)
from hetplan.errors import InputError
from hetplan.workload.distributions import Durations, Lengths


class AgenticSpec(BaseModel):
    """The `agentic:` block of a synthetic spec (with `pattern: agentic`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    turns: Lengths                          # turns per session (whole numbers >= 1)
    new_tokens: Lengths                     # tokens added to the context before turns 2..n
    think_time_s: Durations                 # tool / user time between a response and the next turn
    system_prompt_tokens: int = Field(default=0, ge=0, le=MAX_TOKENS)
    assumed_tpot_ms: LatencyMs = 30.0       # open-loop response time per generated token
    max_context_tokens: TokenCount = 131_072


def _segment_cumsum(x: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Inclusive cumulative sum restarting at each segment (segments are contiguous)."""
    c = np.cumsum(x)
    return c - np.repeat(c[starts] - x[starts], counts)


def sessions(spec: AgenticSpec, starts_s: np.ndarray, first_input: Lengths, output: Lengths,
             duration_s: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Requests of sessions starting at `starts_s` (ascending): arrays arrival_s,
    input_tokens, output_tokens, session_id (0.. in start order), prefix_tokens. Draws from
    `rng` in a fixed order, so a seed fixes the result."""
    n = starts_s.size
    if n == 0:
        return {k: np.zeros(0, dtype=np.float64 if k == "arrival_s" else np.int64)
                for k in ("arrival_s", "input_tokens", "output_tokens", "session_id",
                          "prefix_tokens")}
    n_turns = spec.turns.sample(rng, n)
    first = first_input.sample(rng, n)
    total = int(n_turns.sum())
    if total > MAX_SYNTHETIC_REQUESTS:
        raise InputError(synthetic_requests_message(total), field="workload.synthetic")
    out = output.sample(rng, total)
    new = spec.new_tokens.sample(rng, total)
    think = spec.think_time_s.sample(rng, total)

    seg = np.cumsum(n_turns) - n_turns                  # index of each session's first turn
    sid = np.repeat(np.arange(n, dtype=np.int64), n_turns)
    turn = np.arange(total) - np.repeat(seg, n_turns)
    new[turn == 0] = 0
    grown = _segment_cumsum(new, seg, n_turns) + _segment_cumsum(out, seg, n_turns) - out
    inp = spec.system_prompt_tokens + first[sid] + grown
    prefix = np.where(turn == 0, spec.system_prompt_tokens, inp - new)
    gap_s = out * spec.assumed_tpot_ms / 1e3 + think
    arrival = starts_s[sid] + _segment_cumsum(gap_s, seg, n_turns) - gap_s
    keep = (inp <= spec.max_context_tokens) & (arrival < duration_s)
    cols = {"arrival_s": arrival[keep], "input_tokens": inp[keep].astype(np.int64),
            "output_tokens": out[keep].astype(np.int64), "session_id": sid[keep],
            "prefix_tokens": prefix[keep].astype(np.int64)}
    if cols["arrival_s"].size:            # nothing is cached before the first request
        first_req = int(np.argmin(cols["arrival_s"]))
        if turn[keep][first_req] == 0:
            cols["prefix_tokens"][first_req] = 0
    return cols
