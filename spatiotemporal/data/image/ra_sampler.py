"""Repeated-augmentation sampler: timm's ``RepeatAugSampler`` (DeiT ``RASampler``) that resumes mid-epoch."""

from __future__ import annotations

from collections.abc import Sized

from timm.data.distributed_sampler import RepeatAugSampler

from ...utils.errors import UserInputError
from ..samplers import MidEpochResume, dist_rank_world


class RASampler(MidEpochResume, RepeatAugSampler):
    """Each index appears ``num_repeats`` times per epoch, the copies dealt round-robin to the ranks.

    timm's order (every index of a permutation repeated in place, padded by wrapping to a multiple of
    ``num_replicas``, rank ``r`` takes ``[r::num_replicas]``), drawn from ``seed + epoch`` (timm's uses the epoch
    alone). Per rank and epoch: ``len(ds) // round_to * round_to // num_replicas`` samples (DeiT's rule with
    ``round_to=256``; timm keeps ``ceil(len(ds) / num_replicas)`` for a set smaller than ``round_to``), or all
    ``ceil(len(ds) * num_repeats / num_replicas)`` with ``round_to=None``. Follows the sampler protocol of
    ``data.samplers`` (``set_epoch``, ``set_start``, ``len``); ``num_replicas`` / ``rank`` default to
    ``torch.distributed``'s (1 / 0 without a process group).
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
        if num_repeats < 1:
            raise UserInputError(f"RASampler: num_repeats must be >= 1, got {num_repeats}")
        rank, num_replicas = dist_rank_world(rank, num_replicas)
        super().__init__(dataset, num_replicas, rank, shuffle, int(num_repeats), selected_round=round_to or 0)
        if round_to is None:
            self.num_selected_samples = self.num_samples
        if self.num_selected_samples == 0:
            raise UserInputError(
                f"RASampler: {len(dataset)} samples with round_to={round_to} over {num_replicas} ranks leave no "
                "sample per rank; use round_to=None"
            )
        self.seed = int(seed)

    def rank_indices(self) -> list[int]:
        epoch = self.epoch
        self.epoch = self.seed + epoch  # timm seeds its generator with self.epoch
        try:
            return super().rank_indices()
        finally:
            self.epoch = epoch
