"""Batching for :class:`~.dataset.VideoClipDataset`: a collate that drops skipped videos, and a DataLoader."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..collate import collate_skipping


def collate_videos(batch: list[dict[str, Any] | list[dict[str, Any]]]) -> dict[str, Any]:
    """``{"video": (B, C, T, H, W) or (B, V, C, T, H, W) float32, "label": (B,), "index": (B,), "skipped": [paths]}``
    from the readable items of ``batch`` (``collate_skipping``); an item that is a list (the N clips of one video
    under repeated augmentation) adds its N clips in order, so B counts clips."""
    flat = [entry for item in batch for entry in (item if isinstance(item, list) else [item])]
    return collate_skipping(flat, "video")


def video_worker_init(worker_id: int) -> None:
    """One intra-op thread per worker: decoding and transforms are parallelised across workers."""
    torch.set_num_threads(1)


def build_video_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = False,
    num_workers: int = 0,
    sampler: Sampler | None = None,
    drop_last: bool = False,
    generator: torch.Generator | None = None,
    prefetch_factor: int | None = None,
    pin_memory: bool | None = None,
    worker_init_fn: Callable[[int], None] | None = video_worker_init,
) -> DataLoader:
    """A DataLoader with :func:`collate_videos`, ``pin_memory`` when CUDA is available (unless given),
    ``persistent_workers`` when ``num_workers > 0`` and one torch thread per worker.

    ``sampler`` excludes ``shuffle``; pass a seeded ``generator`` (or a sampler) for a reproducible order.
    """
    if sampler is not None and shuffle:
        raise ValueError("build_video_loader: give either shuffle=True or a sampler, not both")
    kwargs: dict[str, Any] = {}
    if num_workers > 0:
        kwargs["persistent_workers"] = True
        kwargs["worker_init_fn"] = worker_init_fn
        if prefetch_factor is not None:
            kwargs["prefetch_factor"] = prefetch_factor
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle if sampler is None else False,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_videos,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        drop_last=drop_last,
        generator=generator,
        **kwargs,
    )
