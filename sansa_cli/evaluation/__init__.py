"""Benchmark evaluation (``sansa eval``): episodes, the feature cache, resuming, reports."""

from sansa_cli.evaluation.plan import EvalJob, build_plan
from sansa_cli.evaluation.run import run_eval

__all__ = ["EvalJob", "build_plan", "run_eval"]
