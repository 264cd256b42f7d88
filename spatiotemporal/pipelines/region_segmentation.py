"""3D segmentation into overlapping regions (BraTS TC / WT / ET): sigmoid outputs, region Dice and HD95."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from monai.metrics import DiceMetric, HausdorffDistanceMetric
from monai.transforms import KeepLargestConnectedComponent

from ..data.volume.regions import labels_to_regions
from ..engine import all_reduce_sum
from .losses import region_loss
from .segmentation import SegmentationTask


class RegionSegmentationTask(SegmentationTask):
    """Batches are dicts with ``image (B, C, H, W, D)`` and ``label (B, 1, H, W, D)`` (the dataset's sub-region
    label values, ``convention`` ``msd`` or ``brats``); the label map becomes the region masks ``(B, 3, H, W, D)``
    (TC, WT, ET; :func:`~spatiotemporal.data.volume.regions.labels_to_regions`) for the loss and the metrics.

    One sigmoid output per region; the loss is ``region_loss(loss)`` (Dice, or Dice + BCE). Validation: sliding
    windows as :class:`SegmentationTask`, sigmoid, threshold 0.5 (SegFormer3D's post-processing, recipes.md), then
    MONAI ``DiceMetric(include_background=True)`` per region: ``dice_TC``, ``dice_WT``, ``dice_ET``, ``mean_dice``;
    with ``inference.surface_metrics`` also ``hd95_<region>`` (mm; MONAI ``HausdorffDistanceMetric``) and
    ``mean_hd95``.
    """

    def __init__(self, class_names: Sequence[str], roi: Sequence[int], overlap: float = 0.25, sw_batch_size: int = 4,
                 *, convention: str = "msd", loss: str = "dice_bce", state: dict | None = None, inference=None):
        super().__init__(class_names, roi, overlap, sw_batch_size, loss_fn=region_loss(loss), state=state,
                         inference=inference)
        self.convention = convention

    def regions(self, label: torch.Tensor) -> torch.Tensor:
        """Label map ``(B, 1, *spatial)`` -> region masks ``(B, 3, *spatial)``."""
        return labels_to_regions(label, self.convention)

    def train_step(self, model: torch.nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict, int]:
        x, y = batch["image"], batch["label"]
        loss = self.loss_fn(model(x), self.regions(y).to(x.device))
        return loss, {}, int(x.shape[0])

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Scores averaged over test-time flips: one sigmoid per region."""
        return logits.sigmoid()

    def segment(self, model: torch.nn.Module, x: torch.Tensor, progress: bool = False) -> torch.Tensor:
        """Region masks ``(B, 3, H, W, D)`` (0/1 float): :meth:`labels_from_probabilities` of the sigmoid of
        :meth:`predict` (already averaged over test-time flips when there are some)."""
        return self.labels_from_probabilities(self.model_probabilities(model, x, progress))

    def labels_from_probabilities(self, probs: torch.Tensor) -> torch.Tensor:
        """Region masks ``(B, 3, H, W, D)`` from region probabilities (one model's, or an ensemble's mean)
        thresholded at 0.5; with ``inference.largest_component`` each region keeps its largest connected
        component (MONAI ``KeepLargestConnectedComponent`` on the masks)."""
        masks = (probs > 0.5).float()
        if self.inference.largest_component:
            keep = KeepLargestConnectedComponent(applied_labels=list(range(masks.shape[1])), is_onehot=True,
                                                 independent=True)
            masks = torch.stack([torch.as_tensor(keep(m)) for m in masks])
        return masks

    @torch.inference_mode()
    def evaluate(self, model: torch.nn.Module, loader: Iterable[dict[str, Any]]) -> dict[str, float]:
        """Dice (and HD95) per region over the volumes of ``loader``, on the grid the batches are in; all ranks."""
        scores = RegionScores(self.class_names, self.inference.surface_metrics, next(model.parameters()).device)
        for batch in loader:
            x, y = batch["image"], batch["label"]
            pred = self.segment(model, x).to(y.device)
            scores.add(pred, self.regions(y), self.spacing)
        return scores.result()


class RegionScores:
    """Per-region Dice (and HD95) over volumes: region masks ``(B, K, *spatial)``, sums reduced over ranks.

    Dice: MONAI ``DiceMetric(include_background=True, reduction="none", ignore_empty=False)``, so a region empty
    in both prediction and reference counts as 1 and one predicted where the reference has none as 0.
    HD95: ``HausdorffDistanceMetric(percentile=95)`` in mm, over the volumes whose reference has the region
    (a missed region makes it infinite, as :class:`~.segmentation.SurfaceMetrics` says)."""

    def __init__(self, region_names: Sequence[str], surface: bool = False, device: torch.device | str = "cpu") -> None:
        self.names = list(region_names)
        self.device = torch.device(device)  # where the sums are reduced over ranks (NCCL needs the GPU)
        self.dice = DiceMetric(include_background=True, reduction="none", ignore_empty=False)
        self.hd = HausdorffDistanceMetric(include_background=True, percentile=95, reduction="none") if surface else None
        k = len(self.names)
        self.sums = torch.zeros(3 * k + 1, dtype=torch.float64)  # dice sums, hd95 sums, hd95 counts, volumes
        self.missed = torch.zeros(k, dtype=torch.float64)

    def add(self, pred: torch.Tensor, ref: torch.Tensor, spacing: Sequence[float] | None = None) -> None:
        k = len(self.names)
        pred, ref = pred.float().cpu(), ref.float().cpu()
        self.sums[:k] += self.dice(pred, ref).double().sum(0)
        self.sums[-1] += pred.shape[0]
        if self.hd is not None:
            kw = {"spacing": [float(s) for s in spacing]} if spacing is not None else {}
            hd = self.hd(pred, ref, **kw).double()
            has = ref.flatten(2).sum(-1) > 0
            missed = has & (pred.flatten(2).sum(-1) == 0)
            ok = has & ~missed & torch.isfinite(hd)
            self.sums[k:2 * k] += torch.where(ok, hd, 0).sum(0)
            self.sums[2 * k:3 * k] += ok.double().sum(0)
            self.missed += missed.double().sum(0)

    def result(self) -> dict[str, float]:
        k = len(self.names)
        s = all_reduce_sum(torch.cat([self.sums, self.missed]).to(self.device)).cpu()
        volumes = float(s[3 * k])
        dice = (s[:k] / max(volumes, 1.0)).tolist()
        out: dict[str, Any] = {f"dice_{n}": d for n, d in zip(self.names, dice)}
        out["mean_dice"] = sum(dice) / k
        if self.hd is not None:
            hd = [float("inf") if s[3 * k + 1 + j] > 0 else float(s[k + j] / s[2 * k + j]) if s[2 * k + j] > 0
                  else float("nan") for j in range(k)]
            out.update({f"hd95_{n}": h for n, h in zip(self.names, hd)})
            finite = [h for h in hd if h == h]
            if finite:
                out["mean_hd95"] = sum(finite) / len(finite)
        out["num_samples"] = volumes
        return out


def region_table(columns: dict[str, dict[str, float]], region_names: Sequence[str]) -> str:
    """A plain-text table of Dice (and HD95 where measured) per region, one column per grid."""
    keys = [*(f"dice_{n}" for n in region_names), "mean_dice", *(f"hd95_{n}" for n in region_names), "mean_hd95"]
    labels = [*(f"Dice {n}" for n in region_names), "Dice mean", *(f"HD95 {n} (mm)" for n in region_names),
              "HD95 mean (mm)"]
    width = max(len(s) for s in labels)
    widths = [max(len(c), 6) for c in columns]
    rows = ["  ".join([f"{'region':<{width}}", *(f"{c:>{w}}" for c, w in zip(columns, widths))])]
    for label, key in zip(labels, keys):
        if not any(key in m for m in columns.values()):
            continue
        cells = [f"{m[key]:.4f}" if key in m else "-" for m in columns.values()]
        rows.append("  ".join([f"{label:<{width}}", *(f"{c:>{w}}" for c, w in zip(cells, widths))]))
    return "\n".join(rows)
