"""The router's dispatch rule inside a pool (issue 17): `router.pick_replica` and the engine
on hand-computable cases."""

from __future__ import annotations

import random

import numpy as np
import pytest

from hetplan.emit.serve import EmitOptions
from hetplan.simulate.engine import PoolSpec, run
from hetplan.simulate.router import DISPATCH, DISPATCH_RULES, pick_replica
from hetplan.simulate.steps import ConstantSteps


class _R:
    def __init__(self, load: int, tokens: int = 0, busy: bool = True):
        self.load, self.tokens, self.busy = load, tokens, busy


class _Draws(random.Random):
    """randrange returns the scripted values in order."""

    def __init__(self, values):
        super().__init__(0)
        self.values = list(values)

    def randrange(self, n):
        v = self.values.pop(0)
        assert 0 <= v < n
        return v


def test_the_emitted_router_policy_is_the_simulated_rule():
    assert DISPATCH in DISPATCH_RULES
    assert EmitOptions().router_policy == DISPATCH == "power_of_two"


def test_power_of_two_compares_two_distinct_replicas_and_keeps_the_first_on_a_tie():
    reps = [_R(5), _R(1), _R(3)]
    # draws 0 then 1: the second index skips the first, so replicas 0 and 2 are compared
    assert pick_replica(reps, "power_of_two", _Draws([0, 1])) is reps[2]
    # 2 then 0: replicas 2 and 0; the least loaded of all (1) was not drawn
    assert pick_replica(reps, "power_of_two", _Draws([2, 0])) is reps[2]
    # 1 then 1: replicas 1 and 2
    assert pick_replica(reps, "power_of_two", _Draws([1, 1])) is reps[1]
    tie = [_R(2), _R(2)]
    assert pick_replica(tie, "power_of_two", _Draws([1, 0])) is tie[1]
    assert pick_replica([reps[0]], "power_of_two", _Draws([])) is reps[0]   # no draw


def test_least_requests_and_least_tokens_read_different_loads():
    reps = [_R(1, tokens=5000), _R(3, tokens=300), _R(1, tokens=900)]
    assert pick_replica(reps, "least_requests", random.Random(0)) is reps[0]
    assert pick_replica(reps, "least_tokens", random.Random(0)) is reps[1]
    idle = [_R(4), _R(0, busy=False), _R(0)]
    assert pick_replica(idle, "central_queue", random.Random(0)) is idle[1]
    with pytest.raises(ValueError, match="dispatch rule"):
        run(np.zeros(1), np.ones(1, int), np.ones(1, int), np.zeros(1, int), np.full(1, -1),
            [PoolSpec("p", "prefill", 1, ConstantSteps(1.0), dispatch="fastest")])


class _Linear(ConstantSteps):
    """Prefill takes 1 ms per prompt token."""

    def __init__(self):
        super().__init__(0.0)

    def prefill_s(self, lengths, cached=None) -> float:
        return 1e-3 * sum(lengths)


@pytest.mark.parametrize("rule,c_first_s", [
    ("least_requests", 11.0),   # both replicas hold one request: the first, behind A
    ("least_tokens", 11.5),     # B's 6000 tokens < A's 10000: behind B, which ends later
    ("central_queue", 11.0),    # waits in the pool's queue for the first replica to free
])
def test_engine_dispatch_on_a_hand_computed_case(rule, c_first_s):
    """Two prefill replicas, one prompt per step: A (10000 tokens) at 0 runs 0-10 s on
    replica 0, B (6000) at 4.5 s runs 4.5-10.5 s on replica 1; C (1000) arrives at 5 s."""
    arr = np.array([0.0, 4.5, 5.0])
    res = run(arr, np.array([10000, 6000, 1000]), np.ones(3, int), np.zeros(3, int),
              np.full(3, -1), [PoolSpec("p", "prefill", 2, _Linear(), max_seqs=1,
                                        dispatch=rule)])
    assert res.first_token_s == pytest.approx([10.0, 10.5, c_first_s])
    assert res.outstanding == 0
