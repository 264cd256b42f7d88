"""Which tensors hold a NaN or an infinity (weights before a checkpoint is written or after one is read)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch.distributed.tensor import DTensor

__all__ = ["non_finite"]


def non_finite(named: Iterable[tuple[str, torch.Tensor]]) -> list[str]:
    """Names of the floating-point tensors holding a NaN or an infinity (one sync per device); of a sharded
    tensor (FSDP's ``DTensor``), this rank's shard is checked."""
    by_device: dict[torch.device, list[tuple[str, torch.Tensor]]] = {}
    for k, t in named:
        if isinstance(t, DTensor):
            t = t.to_local()
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            by_device.setdefault(t.device, []).append((k, torch.isfinite(t).all()))
    bad = []
    for pairs in by_device.values():
        ok = torch.stack([flag for _, flag in pairs]).tolist()
        bad += [k for (k, _), good in zip(pairs, ok) if not good]
    return bad
