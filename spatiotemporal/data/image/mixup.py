"""Mixup/CutMix of image batches (DeiT III), odd batches included; the matching losses are in
``pipelines/losses.py``."""

from __future__ import annotations

import torch
from timm.data import Mixup
from timm.data.mixup import mixup_target


class OddBatchMixup(Mixup):
    """timm ``Mixup`` that also accepts odd batches (e.g. after unreadable images were dropped).

    ``(x: (B, C, H, W), target: (B,) int64) -> (x, (B, num_classes) float)``; with odd ``B`` the first
    ``B - 1`` samples are mixed as usual and the last one keeps its own (smoothed one-hot) target.
    """

    def __call__(self, x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if len(x) % 2 == 0:
            return super().__call__(x, target)
        tail = mixup_target(target[-1:], self.num_classes, 1.0, self.label_smoothing)
        if len(x) == 1:
            return x, tail
        head_x, head_t = super().__call__(x[:-1], target[:-1])
        return torch.cat([head_x, x[-1:]]), torch.cat([head_t, tail])


def build_mixup(
    num_classes: int,
    *,
    mixup_alpha: float = 0.8,
    cutmix_alpha: float = 1.0,
    smoothing: float = 0.0,
    mixup_prob: float = 1.0,
    switch_prob: float = 0.5,
    mode: str = "batch",
) -> OddBatchMixup | None:
    """DeiT III's Mixup/CutMix, or None when both alphas (or ``mixup_prob``) are 0.

    ``mixup_fn(x, y)`` maps images ``(B, C, H, W)`` and int labels ``(B,)`` to mixed images and soft targets
    ``(B, K)`` (label smoothing ``smoothing`` applied); the matching loss is
    :func:`spatiotemporal.pipelines.losses.classification_loss` with ``soft_targets=True``.
    """
    if not ((mixup_alpha > 0 or cutmix_alpha > 0) and mixup_prob > 0):
        return None
    return OddBatchMixup(mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, prob=mixup_prob,
                         switch_prob=switch_prob, mode=mode, label_smoothing=smoothing, num_classes=num_classes)
