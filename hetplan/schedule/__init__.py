"""Capacity over time: a committed baseline plus per-slot on-demand and spot capacity that
follows a rate profile (`hetplan schedule`).

Modules: `spec` (the scenario's `schedule` block and its documented defaults), `tiers`
(per-GPU on-demand, spot and committed prices from the price sheet), `formulation` (the
schedule MILP), `sizing` (each slot's pools checked against the planner's queueing capacity
U(n) and topped up), `plan` (profile -> candidates -> MILP -> baselines -> result), `reactive`
(the reactive autoscaler baseline), `slots` (the result slot by slot: what the plot draws
and the replay needs), `plot` (schedule.png), `replay` (the simulator's engine with
replicas that come and go) and `simulate` (`hetplan simulate schedule.json`). This module
imports nothing so that `hetplan.scenario` can import `spec` without a cycle.
"""
