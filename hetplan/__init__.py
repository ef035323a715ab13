"""hetplan: plan heterogeneous, disaggregated LLM serving.

Pipeline (one module per stage): catalog -> model -> workload -> perf -> candidates
-> milp -> placement -> simulate -> emit -> report. The CLI in `hetplan.cli` is a thin
wrapper over these library functions.
"""

__version__ = "0.1.0"
