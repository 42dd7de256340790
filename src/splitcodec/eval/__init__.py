"""Evaluation: rate–accuracy records, BD-rate / BD-accuracy, plots."""

from splitcodec.eval.bd import bd_accuracy, bd_rate
from splitcodec.eval.evaluator import Coded, EvalContext, code_samples, evaluate, evaluate_codec, prepare, score
from splitcodec.eval.plot import plot_rate_accuracy
from splitcodec.eval.records import Record, load_records, run_meta, save_records

__all__ = [
    "Coded",
    "EvalContext",
    "Record",
    "bd_accuracy",
    "bd_rate",
    "code_samples",
    "evaluate",
    "evaluate_codec",
    "load_records",
    "plot_rate_accuracy",
    "prepare",
    "run_meta",
    "save_records",
    "score",
]
