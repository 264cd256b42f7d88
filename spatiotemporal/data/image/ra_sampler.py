"""Repeated-augmentation sampler (DeiT ``samplers.RASampler``) following the resumable sampler protocol."""

from __future__ import annotations

import math
from collections.abc import Sized

import torch

from ..samplers import ResumableSampler


class RASampler(ResumableSampler):
    """Each index appears ``num_repeats`` times per epoch, the copies spread over the ranks.

    Per epoch: a permutation drawn from ``seed + epoch`` (or ``arange`` when not shuffling), every index
    repeated ``num_repeats`` times in place, padded to a multiple of ``num_replicas``, dealt round-robin to the
    ranks, then truncated to ``len(ds) // round_to * round_to // num_replicas`` samples per rank
    (``round_to=256`` is DeiT's rule; ``round_to=None`` keeps all ``ceil(len(ds) * num_repeats / num_replicas)``).

    Protocol (``ResumableSampler``): ``set_epoch(epoch)`` selects the order and resets the start;
    ``set_start(n)`` skips the first ``n`` samples of this rank's order for the current epoch; ``len()`` is the
    full-epoch count. ``num_replicas`` / ``rank`` default to ``torch.distributed``'s (1 / 0 without it).
    """

    def __init__(
        self,
        dataset: Sized,
        num_repeats: int = 3,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        round_to: int | None = 256,
    ) -> None:
        super().__init__(len(dataset), shuffle=shuffle, seed=seed, rank=rank, world_size=num_replicas)
        if num_repeats < 1:
            raise ValueError(f"RASampler: num_repeats must be >= 1, got {num_repeats}")
        self.num_repeats = int(num_repeats)
        repeated_per_rank = math.ceil(self.dataset_len * self.num_repeats / self.world_size)
        self.total_size = repeated_per_rank * self.world_size
        if round_to is None:
            self.num_samples = repeated_per_rank
        else:
            self.num_samples = self.dataset_len // round_to * round_to // self.world_size
        if self.num_samples == 0:
            raise ValueError(
                f"RASampler: {self.dataset_len} samples with round_to={round_to} over {self.world_size} "
                "ranks leaves no sample per rank; use a smaller round_to (1) or round_to=None"
            )

    def rank_indices(self) -> list[int]:
        """This rank's full order of dataset indices for the current epoch (``len(self)`` of them)."""
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            indices = torch.randperm(self.dataset_len, generator=g)
        else:
            indices = torch.arange(self.dataset_len)
        order = torch.repeat_interleave(indices, repeats=self.num_repeats).tolist()
        while len(order) < self.total_size:  # pad with the start of the order, as DeiT
            order += order[: self.total_size - len(order)]
        return order[self.rank : self.total_size : self.world_size][: self.num_samples]
