"""What every opened video is, whatever reads it (decord, PyAV, a folder of frames): the :class:`VideoSource`
interface, the error a bad video raises, and the index and resize rules all readers share."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ...utils.errors import SpatioUserError

__all__ = ["VideoDecodeError", "VideoSource", "check_indices", "short_side_size"]


class VideoDecodeError(SpatioUserError, RuntimeError):
    """A video that cannot be decoded (missing, truncated, corrupt, ...); ``.path`` names the file."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot decode video {self.path}: {reason}")

    def __reduce__(self):  # keep (path, reason) when sent back from a DataLoader worker
        return (type(self), (self.path, self.reason))


def short_side_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """``(new_h, new_w)`` with the short side = ``short_side`` (long side floored, as TimeSformer)."""
    if width <= height:
        return int(math.floor(height / width * short_side)), short_side
    return short_side, int(math.floor(width / height * short_side))


def check_indices(path: Path, indices: Sequence[int], num_frames: int) -> np.ndarray:
    """``indices`` as a flat int64 array; ``IndexError`` naming ``path`` if one lies outside ``[0, num_frames)``."""
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < 0 or idx.max() >= num_frames):
        raise IndexError(f"{path}: frame indices must lie in [0, {num_frames}), got {idx.min()}..{idx.max()}")
    return idx


class VideoSource(ABC):
    """An opened video (decord, PyAV or a frame folder). Use as a context manager or call :meth:`close`."""

    path: Path
    num_frames: int
    fps: float
    backend: str

    @abstractmethod
    def get_frames(self, indices: Sequence[int]) -> torch.Tensor:
        """Frames at ``indices`` (any order, repeats allowed) as uint8 ``(T, H, W, 3)``."""

    def close(self) -> None:  # noqa: B027 - optional hook: sources without resources need no close
        """Release the decoder (subclasses that hold one override this)."""

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
