"""Training checkpoints: written atomically, read with ``torch.load(weights_only=True)``.

A checkpoint is a dict of tensors and plain Python values only, built by
:func:`~.checkpoint_payload.checkpoint_payload` (the one place its content is decided).

- ``last.pt`` (what ``resume`` needs): ``format, kind="last", model, task, config, step, epoch,
  batches_done, samples_done, world_size, parallel, batch_size, accum_steps, sampler, best, last_eval, totals,
  elapsed_s, optimizer, scheduler, scaler, rank_states`` (per rank: rng, meter, skip counters); with a weight EMA
  (``train.ema``) also ``ema`` (its state dict, keyed as ``model``) and ``last_eval_ema``.
- ``best.pt`` (the weights of the best evaluation, a file meant for sharing): :func:`shareable_payload` of the
  same, without ``optimizer, scheduler, scaler, rank_states`` (a third of ``last.pt``'s size with AdamW) and
  without ``config`` (the training section names the run folder); its task state keeps only the model spec
  (``models.checkpoint_io.shareable_spec``: no path, cache or augmentation setting) and the ``fold``; plus ``weights``:
  ``"model"``, or ``"ema"`` when its ``model`` holds the EMA's weights (``train.ema.eval``). ``load_pretrained``
  reads both through ``model`` and ``task["spec"]``; copied over ``last.pt`` it also resumes, with fresh optimiser
  state.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..models.checkpoint_io import shareable_spec
from ..utils.atomic import DiskFullError, atomic_copy, atomic_torch_save
from ..utils.errors import SpatioUserError
from ..utils.finite import non_finite

__all__ = ["CHECKPOINT_FORMAT", "CheckpointError", "save_checkpoint", "load_checkpoint", "checkpoint_dir",
           "non_finite", "shareable_payload"]

#: what ``best.pt`` leaves out of a training payload: resume state, and the training section (paths of the run)
NOT_SHARED = ("optimizer", "scheduler", "scaler", "rank_states", "config")

CHECKPOINT_FORMAT = "spatiotemporal.engine/1"


class CheckpointError(SpatioUserError, ValueError):
    """A checkpoint file that cannot be used (truncated, not weights-only, not ours); one-line message."""


def checkpoint_dir(out: str | os.PathLike) -> Path:
    return Path(out) / "checkpoints"


def save_checkpoint(payload: dict[str, Any], path: str | os.PathLike, *copies: str | os.PathLike) -> None:
    """Atomically write ``payload`` to ``path`` and then to each of ``copies`` (file copies, not a
    second serialisation). A file that fails or is killed mid-write keeps its previous content; a full disk is
    one :class:`~spatiotemporal.utils.atomic.DiskFullError` naming the file system, the file and the last good
    checkpoint (the folder's ``last.pt``, as it was)."""
    try:
        atomic_torch_save({"format": CHECKPOINT_FORMAT, **payload}, path)
        for dst in copies:
            atomic_copy(path, dst)
    except DiskFullError as e:
        last = Path(path).parent / "last.pt"
        good = (f"the last good checkpoint is {last} (kept as it was): free space, then continue with --resume"
                if last.is_file() else "no checkpoint of this run was written yet")
        raise DiskFullError(e.errno, e.filename, good) from None


def shareable_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """The ``best.pt`` form of a training payload: :data:`NOT_SHARED` left out, and of the task state only the
    model spec (``spec``, reduced to ``shareable_spec``), the class names and the cross-validation ``fold`` (case file
    names, no path)."""
    out = {k: v for k, v in payload.items() if k not in NOT_SHARED}
    task = payload.get("task")
    if isinstance(task, dict):
        out["task"] = {k: shareable_spec(v) if k in ("spec", "model_spec") and isinstance(v, dict) else v
                       for k, v in task.items() if k in ("spec", "model_spec", "class_names", "fold")}
    return out


def _reason(e: Exception) -> str:
    """The informative sentence of torch's multi-line load errors (the blocked global of a pickle)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    text = next((line for line in lines if "GLOBAL" in line), lines[0] if lines else "")
    return text.split(". ")[0].rstrip(".")


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``): ``FileNotFoundError`` for a missing file,
    :class:`CheckpointError` (one line naming the file) for an unreadable or foreign one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated zip, a pickle with code in it, ...
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: {_reason(e)})") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path}: not a spatiotemporal training checkpoint (expected format '{CHECKPOINT_FORMAT}')"
        )
    return ckpt
