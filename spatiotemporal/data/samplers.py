"""Distributed samplers that can resume mid-epoch.

The sampler protocol the training engine relies on (any sampler given to it must follow it):

- ``set_epoch(epoch)``: choose the epoch's order (a function of ``(seed, epoch)`` only); resets the start.
- ``set_start(n)``: skip the first ``n`` samples of this rank's order for the current epoch.
- ``__len__``: the full-epoch number of samples of this rank (not reduced by ``set_start``).

``MidEpochResume`` adds ``set_start`` to a library sampler; ``ResumableSampler`` is torch's
``DistributedSampler`` with it (the image pipeline's ``RASampler`` is timm's ``RepeatAugSampler`` with it).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch.distributed as dist
from torch.utils.data import DistributedSampler


def dist_rank_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """Fill ``rank`` / ``world_size`` from the default process group (or 0 / 1 without one).

    Library samplers ask ``torch.distributed`` even in a single process, which fails without a process group.
    """
    initialized = dist.is_available() and dist.is_initialized()
    if world_size is None:
        world_size = dist.get_world_size() if initialized else 1
    if rank is None:
        rank = dist.get_rank() if initialized else 0
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"invalid rank {rank} for world_size {world_size}")
    return rank, world_size


class MidEpochResume:
    """Mixin before a sampler whose ``__iter__`` yields this rank's full order for ``self.epoch`` and that has
    ``set_epoch``, ``num_replicas`` and ``__len__``: adds ``set_start`` and ``state_dict`` (the protocol above)."""

    start: int = 0

    @property
    def world_size(self) -> int:
        return self.num_replicas

    def rank_indices(self) -> list[int]:
        """This rank's full order for the current epoch (before ``set_start``)."""
        return list(super().__iter__())

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's order and reset the start position to 0."""
        super().set_epoch(int(epoch))
        self.start = 0

    def set_start(self, n: int) -> None:
        """Skip the first ``n`` samples of this rank's order for the current epoch."""
        if not 0 <= n <= len(self):
            raise ValueError(f"start {n} outside [0, {len(self)}] for rank {self.rank}")
        self.start = int(n)

    def __iter__(self) -> Iterator[int]:
        return iter(self.rank_indices()[self.start :])

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "start": self.start}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.set_epoch(state["epoch"])
        self.set_start(state["start"])


class ResumableSampler(MidEpochResume, DistributedSampler):
    """``torch.utils.data.DistributedSampler`` over ``range(dataset_len)`` plus ``set_start``.

    Orders are DistributedSampler's (permutation from ``seed + epoch``, padded by repetition to a multiple of
    ``world_size`` or tail dropped with ``drop_last``, rank ``r`` takes ``[r::world_size]``). ``pad=False``
    (evaluation) neither pads nor drops: ranks get uneven shares and every sample is seen exactly once.
    ``rank`` / ``world_size`` default to ``torch.distributed``'s (0 / 1 without a process group).
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
        rank, world_size = dist_rank_world(rank, world_size)
        super().__init__(range(int(dataset_len)), world_size, rank, shuffle, int(seed), drop_last and pad)
        self.pad = pad

    def rank_indices(self) -> list[int]:
        # unpadded: this rank's padded order starts with its share of the unpadded permutation
        return super().rank_indices()[: len(self)]

    def __len__(self) -> int:
        return self.num_samples if self.pad else len(range(self.rank, len(self.dataset), self.num_replicas))
