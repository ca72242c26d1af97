"""Code benchmarks scored by execution: HumanEval(+), MBPP(+), pass@k (EvalPlus's protocol)."""

from divplugin.codeeval.evaluate import PassReport, SampleError, evaluate
from divplugin.codeeval.passk import mean_pass_at_k, pass_at_k
from divplugin.codeeval.problems import (
    BENCHMARKS,
    BenchmarkDataError,
    Problem,
    load_problems,
)
from divplugin.codeeval.sanitize import extract_code

__all__ = [
    "BENCHMARKS",
    "BenchmarkDataError",
    "Problem",
    "PassReport",
    "SampleError",
    "evaluate",
    "extract_code",
    "load_problems",
    "mean_pass_at_k",
    "pass_at_k",
]
