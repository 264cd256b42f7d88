"""Mixup/CutMix and the matching training loss (DeiT III: binarised-target BCE; or label-smoothed CE)."""

from __future__ import annotations

import torch
from timm.data import Mixup
from timm.data.mixup import mixup_target
from timm.loss import BinaryCrossEntropy, LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from torch import nn

from ...utils.errors import UserInputError

LOSSES = ("bce", "ce")


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


def build_mixup_and_loss(
    num_classes: int,
    loss: str = "bce",
    mixup_alpha: float = 0.8,
    cutmix_alpha: float = 1.0,
    smoothing: float = 0.0,
    mixup_prob: float = 1.0,
    switch_prob: float = 0.5,
    mode: str = "batch",
) -> tuple[Mixup | None, nn.Module]:
    """Return ``(mixup_fn or None, train_loss_fn)``; ``loss_fn(logits (B, K), targets)`` -> scalar.

    ``mixup_fn(x, y)`` maps images ``(B, C, H, W)`` and int labels ``(B,)`` to mixed images and soft targets
    ``(B, K)``; it is None when both alphas (or ``mixup_prob``) are 0, and the loss then takes int labels.
    ``loss="bce"`` (DeiT III): ``BinaryCrossEntropy(target_threshold=0)``, so every class with a positive
    mixed weight (both mixed classes) gets target 1; smoothing must be 0. ``loss="ce"``: soft-target CE after
    Mixup (smoothing applied by Mixup), else label-smoothing CE (plain CE when ``smoothing`` is 0).
    """
    if loss not in LOSSES:
        raise UserInputError(f"loss must be one of {LOSSES}, got {loss!r}")
    if loss == "bce" and smoothing > 0:
        raise UserInputError(
            "loss='bce' binarises targets (threshold 0), so smoothing must be 0 (DeiT III uses 0)"
        )
    mixup_fn = None
    if (mixup_alpha > 0 or cutmix_alpha > 0) and mixup_prob > 0:
        mixup_fn = OddBatchMixup(
            mixup_alpha=mixup_alpha,
            cutmix_alpha=cutmix_alpha,
            prob=mixup_prob,
            switch_prob=switch_prob,
            mode=mode,
            label_smoothing=smoothing,
            num_classes=num_classes,
        )
    if loss == "bce":
        loss_fn: nn.Module = BinaryCrossEntropy(smoothing=0.0, target_threshold=0.0)
    elif mixup_fn is not None:
        loss_fn = SoftTargetCrossEntropy()
    elif smoothing > 0:
        loss_fn = LabelSmoothingCrossEntropy(smoothing=smoothing)
    else:
        loss_fn = nn.CrossEntropyLoss()
    return mixup_fn, loss_fn
