"""Code benchmarks scored by execution: HumanEval(+), MBPP(+), pass@k (EvalPlus's protocol)."""

from .evaluate import Report, SampleError, evaluate
from .passk import mean_pass_at_k, pass_at_k
from .problems import BENCHMARKS, BenchmarkDataError, Problem, load_problems
from .sanitize import extract_code

__all__ = ["BENCHMARKS", "BenchmarkDataError", "Problem", "Report", "SampleError", "evaluate",
           "extract_code", "load_problems", "mean_pass_at_k", "pass_at_k"]
