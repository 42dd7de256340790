"""An experiment in one file: ``splitcodec run experiment.toml`` evaluates what ``splitcodec eval`` would.

Every key of the file is an ``eval`` flag and the other way round (``--calibration-data`` is the key
``calibration_data``); both build an :class:`Experiment` and call :func:`run_experiment`, so the same
settings give the same records.  Paths in a file are relative to the file's folder.

.. code-block:: toml

    model = "torchvision:resnet18"          # a registered name, torchvision:<arch>, or file.py:Class
    weights = "resnet18.pt"                 # a state-dict file (optional)
    split = ["layer2", "layer3"]            # one or more split points (default: the model's)
    dataset = "imagenet-val/"               # registered name, ImageFolder dir, .pt/.npz file
    calibration_data = "calib/"             # separate calibration images (optional)
    codec = ["uniform:bits=8,4", "lightweight"]   # specs, or a table: [codec.uniform] bits = [8, 4]
    samples = 1000                          # evaluation images (default: all)
    calibration = 64                        # calibration images
    image_size = 224                        # resize + centre crop of folder pictures (default: the model's)
    out = "results/resnet18.json"           # records (+ .csv, .png beside it)
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from splitcodec.errors import SplitcodecError

__all__ = ["Experiment", "ExperimentError", "Run", "load_experiment", "run_experiment", "codec_specs", "setting_domain"]


class ExperimentError(SplitcodecError, ValueError):
    """An experiment file or its flags are invalid."""


@dataclass
class Experiment:
    """What one evaluation run needs; field names are the ``eval`` flags (``_`` for ``-``)."""

    model: str = "ref-resnet"
    weights: str | None = None
    split: list[str] = field(default_factory=list)
    dataset: str | None = None
    calibration_data: str | None = None
    codec: list[str] = field(default_factory=lambda: ["all"])
    samples: int | None = None
    calibration: int = 64
    image_size: int | None = None
    out: str | None = None
    plot: bool = True

    def __post_init__(self) -> None:
        if self.out is not None and Path(self.out).suffix.lower() != ".json":
            raise ExperimentError(
                f"--out {self.out}: give a .json path (the .csv and .png are written beside it with the same name)"
            )
        if self.samples is not None and self.samples <= 0:
            raise ExperimentError(f"--samples must be positive (leave it out for the whole test set), got {self.samples}")
        if self.calibration <= 0:
            raise ExperimentError(f"--calibration must be positive, got {self.calibration}")


def codec_specs(value: Any) -> list[str]:
    """Codec specs from a list of spec strings or a table ``{id: {key: value or [values]}}``."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    if isinstance(value, dict):
        out = []
        for cid, params in value.items():
            if not isinstance(params, dict) or not params:
                out.append(cid)
                continue
            parts = [f"{k}=" + ",".join(_spec_value(v) for v in (vals if isinstance(vals, list) else [vals]))
                     for k, vals in params.items()]
            out.append(":".join([cid, *parts]))
        return out
    raise ExperimentError(f"codec must be a list of specs or a table of codec settings, got {value!r}")


def _spec_value(v: Any) -> str:
    import json

    return v if isinstance(v, str) else json.dumps(v)


def _relative(value: str | None, base: Path, registered: Callable[[str], bool] = lambda _: False) -> str | None:
    if value is None or registered(value):
        return value
    if ".py:" in value:
        file, _, attr = value.rpartition(":")
        return f"{_relative(file, base)}:{attr}"
    p = Path(value).expanduser()
    return os.path.normpath(p if p.is_absolute() else base / p)


def load_experiment(path: str | Path) -> Experiment:
    """Read an experiment file (TOML); unknown keys are errors naming the known ones."""
    from splitcodec.data import list_datasets
    from splitcodec.models import list_models

    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ExperimentError(f"cannot read experiment file {path}: {exc}") from exc
    known = {f.name for f in fields(Experiment)}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise ExperimentError(f"{path}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}")
    if "codec" in doc:
        doc["codec"] = codec_specs(doc["codec"])
    if isinstance(doc.get("split"), str):
        doc["split"] = [doc["split"]]
    base = path.parent
    is_model = lambda v: v in list_models() or v.startswith("torchvision:") or ".py:" not in v  # noqa: E731
    doc["model"] = _relative(doc.get("model", Experiment.model), base, is_model)
    doc["dataset"] = _relative(doc.get("dataset"), base, lambda v: v in list_datasets())
    doc["calibration_data"] = _relative(doc.get("calibration_data"), base, lambda v: v in list_datasets())
    for key in ("weights", "out"):
        doc[key] = _relative(doc.get(key), base)
    try:
        return Experiment(**doc)
    except TypeError as exc:
        raise ExperimentError(f"{path}: {exc}") from exc


@dataclass
class Run:
    """What :func:`run_experiment` produced: the records, and the EvalContext of each split."""

    records: list[Any]
    contexts: list[Any]


def _input_size(model: Any, image_size: int | None) -> tuple[int, int, int] | None:
    cfg = getattr(model, "splitcodec_cfg", None)
    size = cfg.input_size if cfg is not None else None
    if image_size is None:
        return size
    return (size[0] if size else 3, image_size, image_size)


def run_experiment(exp: Experiment, *, settings: list | None = None, progress=None, status=None) -> Run:
    """Evaluate every codec setting of ``exp`` at each of its splits (one :func:`prepare` per split)."""
    from splitcodec.data.sources import resolve_dataset
    from splitcodec.eval import evaluate, prepare
    from splitcodec.eval.evaluator import settings_from_specs
    from splitcodec.models.user import resolve_model

    settings = settings if settings is not None else settings_from_specs(exp.codec)
    model = resolve_model(exp.model, exp.weights)
    cfg = getattr(model, "splitcodec_cfg", None)
    dataset = exp.dataset if exp.dataset is not None else (cfg.dataset if cfg else None)
    if dataset is None:
        raise ExperimentError(f"model {exp.model!r} names no dataset: add --dataset NAME|FOLDER|FILE.pt|FILE.npz")
    mean, std = (cfg.mean, cfg.std) if cfg else (None, None)
    sources = resolve_dataset(dataset, exp.calibration_data, calibration_samples=exp.calibration,
                              input_size=_input_size(model, exp.image_size), mean=mean, std=std)
    splits = exp.split or [None]
    if splits == [None] and (cfg is None or cfg.default_split is None):
        raise ExperimentError(f"model {exp.model!r} has no default split: add --split NAME (list them: splitcodec splits)")
    records, contexts = [], []
    for split in splits:
        if status is not None:
            status(f"preparing {exp.model} at {split or 'its default split'} (features, reference outputs)")
        ctx = prepare(model, split, dataset=sources.test, calibration=sources.calibration, samples=exp.samples,
                      calibration_samples=exp.calibration, model_name=exp.model)
        ctx.data_note = sources.note
        contexts.append(ctx)
        todo = settings if split == splits[0] else [s for s in settings if setting_domain(s) != "image"]
        records += evaluate(None, codecs=todo, context=ctx, progress=progress)
    return Run(records, contexts)


def setting_domain(setting: Any) -> str:
    """``"image"`` for input-picture codecs (coded once, whatever the split), else ``"features"``."""
    from splitcodec.codecs.registry import codec_class

    return setting.domain if hasattr(setting, "domain") else codec_class(setting[0]).domain
