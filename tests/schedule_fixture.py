"""The tiny schedule scenario's model, workload, SLO and catalog (an 8B model on L40S and
H100, fixed 500/100-token requests), shared by the schedule tests, which add their name,
constraints and schedule."""

TINY_SCHEDULE_BODY = """\
model: llama-3.1-8b
workload:
  synthetic:
    arrival: {rate_rps: 4}
    input_tokens: {dist: fixed, value: 500}
    output_tokens: {dist: fixed, value: 100}
    duration_s: 120
  classes: {n_input: 1, n_output: 1}
slo: {ttft_ms: 1000, tpot_ms: 50}
catalog: {gpus: [L40S, H100-SXM], prices: 2026-11-market}
"""
