"""The training losses of the pipelines' tasks, in one place: classification (images and video clips) and
segmentation (volumes and 2D images). ``loss_fn(outputs, targets) -> scalar``."""

from __future__ import annotations

import torch
from monai.losses import DiceCELoss, DiceLoss
from timm.loss import BinaryCrossEntropy, LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from torch import nn

from ..utils.errors import UserInputError

__all__ = ["CLASSIFICATION_LOSSES", "REGION_LOSSES", "classification_loss", "region_loss", "segmentation_loss"]

CLASSIFICATION_LOSSES = ("bce", "ce")
REGION_LOSSES = ("dice", "dice_bce")


def classification_loss(loss: str = "ce", *, smoothing: float = 0.0, soft_targets: bool = False) -> nn.Module:
    """``loss_fn(logits (B, K), targets)``: int labels ``(B,)``, or soft targets ``(B, K)`` after Mixup/CutMix
    (``soft_targets``).

    ``loss="bce"`` (DeiT III): ``BinaryCrossEntropy(target_threshold=0)``, so every class with a positive mixed
    weight (both mixed classes) gets target 1; smoothing must be 0. ``loss="ce"``: soft-target CE after Mixup
    (the smoothing is Mixup's), else label-smoothing CE (plain CE when ``smoothing`` is 0; the video default).
    """
    if loss not in CLASSIFICATION_LOSSES:
        raise UserInputError(f"loss must be one of {CLASSIFICATION_LOSSES}, got {loss!r}")
    if loss == "bce":
        if smoothing > 0:
            raise UserInputError("loss='bce' binarises targets (threshold 0), so smoothing must be 0 (DeiT III uses 0)")
        return BinaryCrossEntropy(smoothing=0.0, target_threshold=0.0)
    if soft_targets:
        return SoftTargetCrossEntropy()
    if smoothing > 0:
        return LabelSmoothingCrossEntropy(smoothing=smoothing)
    return nn.CrossEntropyLoss()


def segmentation_loss() -> nn.Module:
    """``loss_fn(logits (B, K, *spatial), labels (B, 1, *spatial) int)``: ``DiceCELoss(to_onehot_y=True,
    softmax=True)``, as MONAI's UNETR tutorial."""
    return DiceCELoss(to_onehot_y=True, softmax=True)


class DiceBCELoss(nn.Module):
    """MONAI ``DiceLoss(sigmoid=True)`` + ``BCEWithLogitsLoss`` on multi-label targets ``(B, K, *spatial)``."""

    # MONAI's DiceCELoss takes a softmax CE whenever there are several channels: wrong for overlapping regions
    def __init__(self) -> None:
        super().__init__()
        self.dice = DiceLoss(sigmoid=True)
        self.bce = nn.BCEWithLogitsLoss()

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.dice(logits, target) + self.bce(logits, target)


def region_loss(name: str = "dice_bce") -> nn.Module:
    """``loss_fn(logits (B, K, *spatial), region masks (B, K, *spatial) 0/1)`` for overlapping regions (sigmoid
    outputs): ``dice`` = MONAI ``DiceLoss(sigmoid=True)`` (SegFormer3D's BraTS loss), ``dice_bce`` = that + BCE."""
    if name not in REGION_LOSSES:
        raise UserInputError(f"region loss (data.region_loss) must be one of {REGION_LOSSES}, got {name!r}")
    return DiceLoss(sigmoid=True) if name == "dice" else DiceBCELoss()
