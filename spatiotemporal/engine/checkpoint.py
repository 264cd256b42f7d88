"""Training checkpoints: written atomically, read with ``torch.load(weights_only=True)``.

A checkpoint is a dict of tensors and plain Python values only (see ``Trainer._checkpoint_payload``):
``format, model, optimizer, scheduler, scaler, step, epoch, batches_done, samples_done, world_size,
batch_size, best, last_eval, skipped, elapsed_s, rank_states (per rank: rng, meter), config`` and
``task`` when the task has a ``state_dict``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from ..utils.atomic import atomic_copy, atomic_torch_save

__all__ = ["CHECKPOINT_FORMAT", "save_checkpoint", "load_checkpoint", "checkpoint_dir"]

CHECKPOINT_FORMAT = "spatiotemporal.engine/1"


def checkpoint_dir(out: str | os.PathLike) -> Path:
    return Path(out) / "checkpoints"


def save_checkpoint(payload: dict[str, Any], path: str | os.PathLike, *copies: str | os.PathLike) -> None:
    """Atomically write ``payload`` to ``path`` and then to each of ``copies`` (file copies, not a
    second serialisation). A file that fails or is killed mid-write keeps its previous content."""
    atomic_torch_save({"format": CHECKPOINT_FORMAT, **payload}, path)
    for dst in copies:
        atomic_copy(path, dst)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``); clear errors for a missing or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise RuntimeError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path}: not a spatiotemporal training checkpoint (expected format '{CHECKPOINT_FORMAT}')"
        )
    return ckpt
