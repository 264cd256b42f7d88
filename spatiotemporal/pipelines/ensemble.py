"""Ensembles of checkpoints (``spatio predict/eval --checkpoint A --checkpoint B ...``): what makes models
averageable (one modality, the same class names, the same stored preprocessing spec) and the cross-validation fold
a training checkpoint records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..utils.errors import UserInputError
from .base import Pipeline, _leaf_keys, _lookup


def check_ensemble(pipeline: Pipeline, models: list[nn.Module], names: list[str]) -> None:
    """Nothing for one model. For several: ``pipeline`` must average them (:attr:`Pipeline.ensembles`), and every
    model must have the first one's modality, class names and stored preprocessing spec (every key of it: the
    grid, the intensity window, the ROI, the inference options); else a :class:`UserInputError` naming the two
    checkpoints and the first differing key."""
    if len(models) < 2:
        return
    if not pipeline.ensembles:
        raise UserInputError(f"--checkpoint given {len(models)} times: {pipeline.modality} models predict with one "
                             f"checkpoint (ensembles average volume segmentations)")
    first, a = models[0], names[0]
    facts = _facts(pipeline, first, a)
    for model, b in zip(models[1:], names[1:]):
        if type(model).modality != type(first).modality:
            raise UserInputError(f"{a} and {b} cannot be ensembled: {a} is a {type(first).modality} model, {b} a "
                                 f"{type(model).modality} model")
        other = _facts(pipeline, model, b)
        for key in sorted(set(_leaf_keys(facts)) | set(_leaf_keys(other))):
            va, vb = _lookup(facts, key), _lookup(other, key)
            if _norm(va) != _norm(vb):
                raise UserInputError(f"{a} and {b} cannot be ensembled: their {key} differ ({va!r} vs {vb!r}); an "
                                     f"ensemble needs the same class names and preprocessing")


def _facts(pipeline: Pipeline, model: nn.Module, where: str) -> dict:
    names = list((getattr(model, "pretrained_cfg", None) or {}).get("class_names") or [])
    return {"class_names": names or None, "preprocessing": pipeline.stored_preprocessing(model, where)}


def _norm(v: Any) -> Any:
    return tuple(_norm(x) for x in v) if isinstance(v, (list, tuple)) else v


def stored_fold(checkpoint: str | Path) -> dict | None:
    """The cross-validation fold a training checkpoint (``last.pt``, ``best.pt``) records in its task state
    (``fold``, ``folds``, ``seed``, ``validation_cases``); None for a run without folds or another file format.
    Read memory-mapped: the weights are not loaded again."""
    path = Path(checkpoint)
    if not path.is_file():
        return None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # safetensors, foreign formats: they store no fold
        return None
    task = obj.get("task") if isinstance(obj, dict) else None
    fold = task.get("fold") if isinstance(task, dict) else None
    return dict(fold) if isinstance(fold, dict) else None
