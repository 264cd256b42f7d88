"""3D segmentation: DiceCE loss, sliding-window validation, per-class Dice with and without background."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from monai.inferers import sliding_window_inference
from monai.losses import DiceCELoss

from ..engine import all_reduce_sum


class SegmentationTask:
    """Batches are dicts with ``image (B, C, H, W, D)`` and ``label (B, 1, H, W, D)`` (integer classes).

    Training: ``DiceCELoss(to_onehot_y=True, softmax=True)`` as MONAI's UNETR tutorial. Validation: sliding
    windows of ``roi`` with ``overlap`` and ``sw_batch_size`` (bf16 autocast on GPU), argmax, then Dice per
    class on the model's (resampled, cropped) grid: a class absent from the reference counts as 0 in a volume
    where it is predicted (a false positive) and is left out where it is not (:class:`DiceSums`). Reports
    ``dice_<class>``, ``mean_dice`` (foreground classes), ``mean_dice_bg`` (background included) and
    ``num_samples`` (volumes evaluated). ``spatio eval`` measures on the original grid too (the volume pipeline).
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

    def predict(self, model: torch.nn.Module, x: torch.Tensor, progress: bool = False) -> torch.Tensor:
        """Sliding-window logits ``(B, K, H, W, D)`` for a whole volume ``(B, C, H, W, D)``; ``progress``: a bar
        over the windows (MONAI's)."""
        use_bf16 = x.device.type == "cuda" and torch.cuda.is_bf16_supported()
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=use_bf16):
            out = sliding_window_inference(x, self.roi, self.sw_batch_size, model, overlap=self.overlap,
                                           progress=progress)
        return out.float()

    @torch.inference_mode()
    def evaluate(self, model: torch.nn.Module, loader: Iterable[dict[str, Any]]) -> dict[str, float]:
        """Dice per class of every volume of ``loader`` on the grid the batches are in (the model's: resampled
        and cropped), all ranks; see :class:`DiceSums` for what counts."""
        sums = DiceSums(self.class_names, device=next(model.parameters()).device)
        for batch in loader:
            x, y = batch["image"], batch["label"]
            pred = self.predict(model, x).argmax(1)
            for b in range(x.shape[0]):
                sums.add(pred[b], y[b, 0])
        return sums.result()

    def state_dict(self) -> dict:
        return dict(self.state)

    def load_state_dict(self, state: dict) -> None:
        self.state.update(state or {})


def dice_per_class(pred: torch.Tensor, ref: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Dice ``2|P_k & R_k| / (|P_k| + |R_k|)`` of each class ``k`` between two integer label maps of one shape.

    Returns ``(dice (K,) float64, counted (K,) bool)``: a class in neither map is not counted; a class the
    prediction has and the reference lacks counts with Dice 0 (a false positive). From the K x K confusion
    counts (``torch.bincount``) rather than MONAI's ``DiceMetric``, which needs one-hot maps of K times the
    volume (1.4 GB for a 512x512x100 CT of 14 classes); equal to ``DiceMetric(ignore_empty=False)`` (test).
    """
    k = num_classes
    cm = torch.bincount((ref.long().flatten() * k + pred.long().flatten()), minlength=k * k)[: k * k].view(k, k)
    inter, size = cm.diagonal().double(), (cm.sum(0) + cm.sum(1)).double()  # rows: reference, columns: prediction
    return 2 * inter / size.clamp(min=1), size > 0


class DiceSums:
    """Dice per class summed over volumes (counted classes only, see :func:`dice_per_class`), reduced over ranks
    by :meth:`result`: ``dice_<class>`` (mean over the volumes that count it; classes no volume counts are left
    out), ``mean_dice`` (foreground classes), ``mean_dice_bg`` (background included), ``num_samples``."""

    def __init__(self, class_names: Sequence[str], device: torch.device | str = "cpu") -> None:
        self.class_names = list(class_names)
        k = len(self.class_names)
        self.sums = torch.zeros(k, dtype=torch.float64, device=device)
        self.counts = torch.zeros(k, dtype=torch.float64, device=device)
        self.volumes = torch.zeros(1, dtype=torch.float64, device=device)

    def add(self, pred: torch.Tensor, ref: torch.Tensor) -> None:
        """One volume: integer label maps of one shape (any device)."""
        dice, counted = dice_per_class(pred.to(self.sums.device), ref.to(self.sums.device), len(self.class_names))
        self.sums += torch.where(counted, dice, 0)
        self.counts += counted.double()
        self.volumes += 1

    def result(self) -> dict[str, float]:
        k = len(self.class_names)
        reduced = all_reduce_sum(torch.cat([self.sums, self.counts, self.volumes]))
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


def dice_table(columns: dict[str, dict[str, float]], class_names: Sequence[str]) -> str:
    """A plain-text table of per-class Dice and the two means, one column per grid (e.g. ``{"original grid":
    metrics, "resampled grid": metrics}``); the class column is as wide as the longest name; ``-`` where a class
    was in no reference and no prediction."""
    labels = [*class_names, "mean (fg)", "mean (with bg)"]
    keys = [*(f"dice_{n}" for n in class_names), "mean_dice", "mean_dice_bg"]
    width = max(len(s) for s in ["class", *labels])
    widths = [max(len(c), 6) for c in columns]
    rows = ["  ".join([f"{'class':<{width}}", *(f"{c:>{w}}" for c, w in zip(columns, widths))])]
    for label, key in zip(labels, keys):
        cells = [f"{m[key]:.4f}" if key in m else "-" for m in columns.values()]
        rows.append("  ".join([f"{label:<{width}}", *(f"{c:>{w}}" for c, w in zip(cells, widths))]))
    return "\n".join(rows)
