"""Distributed sampler that can resume mid-epoch.

The sampler protocol the training engine relies on (any sampler given to it must follow it):

- ``set_epoch(epoch)``: choose the epoch's order (a function of ``(seed, epoch)`` only); resets the start.
- ``set_start(n)``: skip the first ``n`` samples of this rank's order for the current epoch.
- ``__len__``: the full-epoch number of samples of this rank (not reduced by ``set_start``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch.utils.data import Sampler


def _dist_rank_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """Fill ``rank`` / ``world_size`` from the default process group (or 0 / 1 without one)."""
    initialized = dist.is_available() and dist.is_initialized()
    if world_size is None:
        world_size = dist.get_world_size() if initialized else 1
    if rank is None:
        rank = dist.get_rank() if initialized else 0
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"invalid rank {rank} for world_size {world_size}")
    return rank, world_size


class ResumableSampler(Sampler[int]):
    """``torch.utils.data.DistributedSampler`` semantics plus ``set_start`` for mid-epoch resume.

    Each epoch draws a permutation from ``torch.Generator().manual_seed(seed + epoch)`` (identical to
    DistributedSampler, so the orders match it), pads it by repeating indices to a multiple of
    ``world_size`` (or drops the tail when ``drop_last``) and gives rank ``r`` the indices
    ``[r::world_size]``. ``pad=False`` (evaluation) neither pads nor drops: ranks get uneven shares and
    every sample is seen exactly once across ranks.
    """

    def __init__(
        self,
        dataset_len: int,
        shuffle: bool = True,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        drop_last: bool = False,
        pad: bool = True,
    ) -> None:
        if dataset_len < 0:
            raise ValueError(f"dataset_len must be >= 0, got {dataset_len}")
        self.dataset_len = int(dataset_len)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.rank, self.world_size = _dist_rank_world(rank, world_size)
        self.drop_last = drop_last
        self.pad = pad
        self.epoch = 0
        self.start = 0
        if not pad:
            self.num_samples = len(range(self.rank, self.dataset_len, self.world_size))
        elif drop_last and self.dataset_len % self.world_size != 0:
            self.num_samples = math.ceil((self.dataset_len - self.world_size) / self.world_size)
        else:
            self.num_samples = math.ceil(self.dataset_len / self.world_size)
        self.total_size = self.num_samples * self.world_size

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's permutation and reset the start position to 0."""
        self.epoch = int(epoch)
        self.start = 0

    def set_start(self, n: int) -> None:
        """Skip the first ``n`` samples of this rank's order for the current epoch."""
        if not 0 <= n <= self.num_samples:
            raise ValueError(f"start {n} outside [0, {self.num_samples}] for rank {self.rank}")
        self.start = int(n)

    def rank_indices(self) -> list[int]:
        """This rank's full order for the current epoch (before ``set_start``)."""
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            indices = torch.randperm(self.dataset_len, generator=g).tolist()
        else:
            indices = list(range(self.dataset_len))
        if not self.pad:
            return indices[self.rank :: self.world_size]
        if self.drop_last:
            indices = indices[: self.total_size]
        else:
            padding = self.total_size - len(indices)
            if padding > 0 and indices:
                reps = math.ceil(padding / len(indices))
                indices += (indices * reps)[:padding]
        return indices[self.rank : self.total_size : self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.rank_indices()[self.start :])

    def __len__(self) -> int:
        return self.num_samples

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "start": self.start}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.set_epoch(state["epoch"])
        self.set_start(state["start"])
