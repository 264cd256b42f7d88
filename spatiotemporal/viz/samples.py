"""The samples a visualisation runs on: :class:`VizSamples` and helpers to pick and crop them.

Each modality's pipeline (``spatiotemporal.pipelines``) builds its ``VizSamples``; ``viz`` only iterates them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ..utils.errors import UserInputError


@dataclass
class VizSamples:
    """An iterable of ``(x, label)`` with ``x`` a float tensor the model takes after adding a batch axis
    (image ``(3, S, S)``, video ``(3, T, S, S)``, volume ``(1, H, W, D)``); ``total`` is the number of items
    it yields (an upper bound for volumes)."""

    kind: str
    class_names: list[str]
    total: int
    description: str
    _iterate: Callable[[], Iterator[tuple[torch.Tensor, int]]]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, int]]:
        return self._iterate()

    def __len__(self) -> int:
        return self.total


@dataclass
class DatasetItems:
    """Random access to every item of a dataset split, for ``spatio embed`` and ``viz``: ``get(i)`` is ``(x, label)``
    (``x`` as in :class:`VizSamples`) or None for an unreadable item (skipped and counted by the caller);
    ``ids[i]`` names item ``i`` (its file)."""

    kind: str
    class_names: list[str]
    ids: list[str]
    description: str
    get: Callable[[int], tuple[torch.Tensor, int] | None]

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, max_samples: int | None) -> VizSamples:
        """The readable items among ``max_samples`` evenly spaced ones, as :class:`VizSamples`."""
        idx = evenly_spaced(len(self), max_samples)

        def iterate():
            for i in idx:
                item = self.get(i)
                if item is not None:
                    yield item

        return VizSamples(self.kind, self.class_names, len(idx), self.description, iterate)


def evenly_spaced(n: int, m: int | None) -> list[int]:
    """``m`` indices spread evenly over ``range(n)`` (all of them if ``m`` is None or >= n), so sorted or
    interleaved classes stay balanced in a subset."""
    if m is None or m >= n:
        return list(range(n))
    if m <= 0:
        raise UserInputError(f"--max-samples / --num-inputs must be >= 1, got {m}")
    return sorted({int(round(v)) for v in np.linspace(0, n - 1, m)})


def crop_centered(vol: np.ndarray, center, size) -> np.ndarray:
    """``(C, H, W, D)`` -> ``(C, *size)`` centred on voxel ``center``, zero-padded where it leaves the volume."""
    size = tuple(int(s) for s in size)
    pad = [(0, 0)] + [(s, s) for s in size]
    padded = np.pad(vol, pad)
    sl = tuple(slice(int(c) + s - s // 2, int(c) + s - s // 2 + s) for c, s in zip(center, size))
    return padded[(slice(None),) + sl]
