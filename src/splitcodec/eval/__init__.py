"""Evaluation: rate–accuracy records, BD-rate / BD-accuracy, plots."""

from splitcodec.eval.bd import bd_accuracy, bd_rate
from splitcodec.eval.evaluator import EvalContext, evaluate, evaluate_codec, prepare
from splitcodec.eval.plot import plot_rate_accuracy
from splitcodec.eval.records import Record, load_records, run_meta, save_records

__all__ = [
    "EvalContext",
    "Record",
    "bd_accuracy",
    "bd_rate",
    "evaluate",
    "evaluate_codec",
    "load_records",
    "plot_rate_accuracy",
    "prepare",
    "run_meta",
    "save_records",
]
