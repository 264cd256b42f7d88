"""3D segmentation: DiceCE loss, sliding-window validation, per-class Dice with and without background."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from monai.inferers import sliding_window_inference
from monai.losses import DiceCELoss
from monai.metrics import DiceMetric
from monai.networks.utils import one_hot

from ..engine import all_reduce_sum


class SegmentationTask:
    """Batches are dicts with ``image (B, C, H, W, D)`` and ``label (B, 1, H, W, D)`` (integer classes).

    Training: ``DiceCELoss(to_onehot_y=True, softmax=True)`` as MONAI's UNETR tutorial. Validation: sliding
    windows of ``roi`` with ``overlap`` and ``sw_batch_size`` (bf16 autocast on GPU, else the caller's precision),
    argmax, then Dice per class (MONAI ``DiceMetric``, an organ absent from the ground truth is left out of its
    mean). Reports ``dice_<class>``, ``mean_dice`` (foreground classes), ``mean_dice_bg`` (background included)
    and ``num_samples`` (volumes evaluated).
    """

    primary_metric = "mean_dice"
    higher_is_better = True

    def __init__(self, class_names: Sequence[str], roi: Sequence[int], overlap: float = 0.25, sw_batch_size: int = 4,
                 loss_fn=None, state: dict | None = None):
        self.class_names = list(class_names)
        self.roi = tuple(int(r) for r in roi)
        self.overlap = overlap
        self.sw_batch_size = sw_batch_size
        self.loss_fn = loss_fn or DiceCELoss(to_onehot_y=True, softmax=True)
        self.state = dict(state or {})

    def train_step(self, model: torch.nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict, int]:
        x, y = batch["image"], batch["label"]
        loss = self.loss_fn(model(x), y)
        return loss, {}, int(x.shape[0])

    def predict(self, model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Sliding-window logits ``(B, K, H, W, D)`` for a whole volume ``(B, C, H, W, D)``."""
        use_bf16 = x.device.type == "cuda" and torch.cuda.is_bf16_supported()
        # elsewhere the caller's precision holds (an autocast(enabled=False) here would switch off the trainer's)
        with torch.autocast("cuda", dtype=torch.bfloat16) if use_bf16 else contextlib.nullcontext():
            out = sliding_window_inference(x, self.roi, self.sw_batch_size, model, overlap=self.overlap)
        return out.float()

    @torch.inference_mode()
    def evaluate(self, model: torch.nn.Module, loader: Iterable[dict[str, Any]]) -> dict[str, float]:
        k = len(self.class_names)
        metric = DiceMetric(include_background=True, reduction="none", ignore_empty=True)
        device = next(model.parameters()).device
        sums = torch.zeros(k, dtype=torch.float64, device=device)
        counts = torch.zeros(k, dtype=torch.float64, device=device)
        volumes = torch.zeros(1, dtype=torch.float64, device=device)
        for batch in loader:
            x, y = batch["image"], batch["label"]
            pred = self.predict(model, x).argmax(1, keepdim=True)
            dice = metric(one_hot(pred, k), one_hot(y.long(), k))  # (B, K), NaN where the class is absent
            valid = ~torch.isnan(dice)
            sums += torch.where(valid, dice, 0).sum(0).double()
            counts += valid.sum(0).double()
            volumes += x.shape[0]
        reduced = all_reduce_sum(torch.cat([sums, counts, volumes]))
        sums, counts, volumes = reduced[:k], reduced[k:2 * k], reduced[2 * k]
        per_class = (sums / counts.clamp(min=1)).tolist()
        present = (counts > 0).tolist()
        out = {f"dice_{n}": d for n, d, p in zip(self.class_names, per_class, present) if p}
        fg = [d for d, p in zip(per_class[1:], present[1:]) if p]
        allc = [d for d, p in zip(per_class, present) if p]
        out["mean_dice"] = sum(fg) / max(len(fg), 1)
        out["mean_dice_bg"] = sum(allc) / max(len(allc), 1)
        out["num_samples"] = float(volumes)
        return out

    def state_dict(self) -> dict:
        return dict(self.state)

    def load_state_dict(self, state: dict) -> None:
        self.state.update(state or {})


def dice_table(metrics: dict[str, float], class_names: Sequence[str]) -> str:
    """A plain-text table of per-class Dice and the two means."""
    rows = [f"{'class':<16} dice"]
    for n in class_names:
        if f"dice_{n}" in metrics:
            rows.append(f"{n:<16} {metrics[f'dice_{n}']:.4f}")
    rows.append(f"{'mean (fg)':<16} {metrics['mean_dice']:.4f}")
    rows.append(f"{'mean (with bg)':<16} {metrics['mean_dice_bg']:.4f}")
    return "\n".join(rows)
