"""Stage 6: the MILP that picks the GPU mix, parallelism, dtypes and routing."""

from hetplan.milp.backends import SOLVERS, solve
from hetplan.milp.formulation import Formulation, Problem
from hetplan.milp.lp import LinearProgram, Solution
from hetplan.milp.solve import Chosen, Outcome, solve_problem

__all__ = ["SOLVERS", "solve", "Formulation", "Problem", "LinearProgram", "Solution", "Chosen",
           "Outcome", "solve_problem"]
