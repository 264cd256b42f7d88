"""3D segmentation: DiceCE loss, sliding-window validation, per-class Dice with and without background."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from monai.inferers import sliding_window_inference
from monai.metrics import HausdorffDistanceMetric, SurfaceDiceMetric
from monai.networks.utils import one_hot
from monai.transforms import KeepLargestConnectedComponent

from ..engine import all_reduce_sum
from .losses import segmentation_loss


class SegmentationTask:
    """Batches are dicts with ``image (B, C, H, W, D)`` and ``label (B, 1, H, W, D)`` (integer classes).

    Training: ``DiceCELoss(to_onehot_y=True, softmax=True)`` as MONAI's UNETR tutorial. Validation: sliding
    windows of ``roi`` with ``overlap`` and ``sw_batch_size`` (bf16 autocast on GPU, else the caller's
    precision), argmax, then Dice per class on the model's (resampled, cropped) grid: a class absent from the
    reference counts as 0 in a volume where it is predicted (a false positive) and is left out where it is not
    (:class:`DiceSums`). Reports
    ``dice_<class>``, ``mean_dice`` (foreground classes), ``mean_dice_bg`` (background included) and
    ``num_samples`` (volumes evaluated). ``spatio eval`` measures on the original grid too (the volume pipeline).
    """

    primary_metric = "mean_dice"
    higher_is_better = True

    def __init__(self, class_names: Sequence[str], roi: Sequence[int], overlap: float = 0.25, sw_batch_size: int = 4,
                 loss_fn=None, state: dict | None = None, inference: InferenceOptions | None = None):
        self.class_names = list(class_names)
        self.roi = tuple(int(r) for r in roi)
        self.overlap = overlap
        self.sw_batch_size = sw_batch_size
        self.loss_fn = loss_fn or segmentation_loss()
        self.state = dict(state or {})
        self.inference = inference or InferenceOptions()
        self.spacing: tuple[float, ...] | None = None  # voxel size (mm) of evaluated label maps, for surface metrics

    def train_step(self, model: torch.nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict, int]:
        x, y = batch["image"], batch["label"]
        loss = self.loss_fn(model(x), y)
        return loss, {}, int(x.shape[0])

    def predict(self, model: torch.nn.Module, x: torch.Tensor, progress: bool = False) -> torch.Tensor:
        """Sliding-window scores ``(B, K, H, W, D)`` for a whole volume ``(B, C, H, W, D)``: logits, or with
        test-time flips the softmax averaged over the flipped passes. ``self.inference`` sets the window blending
        (``constant`` or ``gaussian``), where the windows run (``sw_device``) and where the whole-volume output is
        kept (``device``: e.g. the CPU, so that a big CT fits beside a GPU model); ``progress``: a bar over the
        windows (MONAI's)."""
        o = self.inference
        sw_device = torch.device(o.sw_device) if o.sw_device else x.device
        out_device = torch.device(o.device) if o.device else x.device
        use_bf16 = sw_device.type == "cuda" and torch.cuda.is_bf16_supported()
        flips = flip_axes(o.tta_flips)
        total = None
        for axes in flips:
            xi = x.flip(axes) if axes else x
            # elsewhere the caller's precision holds (an autocast(enabled=False) would switch off the trainer's)
            with torch.autocast("cuda", dtype=torch.bfloat16) if use_bf16 else contextlib.nullcontext():
                out = sliding_window_inference(xi, self.roi, self.sw_batch_size, model, overlap=self.overlap,
                                               mode=o.mode, sigma_scale=o.sigma_scale, sw_device=sw_device,
                                               device=out_device, progress=progress)
            out = out.float()
            if len(flips) == 1:
                return out
            out = self.probabilities(out)
            out = out.flip(axes) if axes else out
            total = out if total is None else total + out
        return total / len(flips)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Scores averaged over test-time flips: the softmax over classes."""
        return logits.softmax(1)

    def model_probabilities(self, model: torch.nn.Module, x: torch.Tensor, progress: bool = False) -> torch.Tensor:
        """Class probabilities ``(B, K, H, W, D)`` of a whole volume: :meth:`probabilities` of :meth:`predict`'s
        logits (with test-time flips :meth:`predict` already averages probabilities)."""
        scores = self.predict(model, x, progress)
        return scores if len(flip_axes(self.inference.tta_flips)) > 1 else self.probabilities(scores)

    def ensemble_probabilities(self, models: Sequence[torch.nn.Module], x: torch.Tensor,
                               progress: bool = False) -> torch.Tensor:
        """The mean of :meth:`model_probabilities` over ``models`` (each with its own sliding windows),
        ``(B, K, ...)``; one volume of probabilities is kept besides the running sum."""
        total = None
        for model in models:
            p = self.model_probabilities(model, x, progress)
            total = p if total is None else total.add_(p)
        return total / len(models)

    def segment(self, model: torch.nn.Module, x: torch.Tensor, progress: bool = False) -> torch.Tensor:
        """Label map ``(B, 1, H, W, D)``: :meth:`labels_from_probabilities` of :meth:`predict`."""
        return self.labels_from_probabilities(self.predict(model, x, progress))

    def segment_ensemble(self, models: Sequence[torch.nn.Module], x: torch.Tensor,
                         progress: bool = False) -> torch.Tensor:
        """Label map ``(B, 1, H, W, D)`` of an ensemble: :meth:`labels_from_probabilities` of
        :meth:`ensemble_probabilities` (a task with other outputs, e.g. sigmoid regions, overrides
        :meth:`probabilities` and :meth:`labels_from_probabilities`)."""
        return self.labels_from_probabilities(self.ensemble_probabilities(models, x, progress))

    def labels_from_probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        """Label map ``(B, 1, H, W, D)`` from probabilities or logits ``(B, K, H, W, D)`` (one argmax): the
        argmax, then the largest connected component per organ when ``inference.largest_component`` is set (MONAI
        ``KeepLargestConnectedComponent``)."""
        pred = scores.argmax(1, keepdim=True)
        if self.inference.largest_component:
            organs = list(range(1, len(self.class_names)))
            keep = KeepLargestConnectedComponent(applied_labels=organs, is_onehot=False, independent=True)
            pred = torch.stack([torch.as_tensor(keep(p)) for p in pred])
        return pred

    @torch.inference_mode()
    def evaluate(self, model: torch.nn.Module, loader: Iterable[dict[str, Any]]) -> dict[str, float]:
        """Dice per class of every volume of ``loader`` on the grid the batches are in (the model's: resampled
        and cropped), all ranks; see :class:`DiceSums` for what counts. With ``inference.surface_metrics`` also
        HD95 and surface Dice per organ (:class:`SurfaceMetrics`)."""
        sums = DiceSums(self.class_names, device=next(model.parameters()).device)
        k = len(self.class_names)
        surface = SurfaceMetrics(k, self.inference.surface_tolerance_mm) if self.inference.surface_metrics else None
        for batch in loader:
            x, y = batch["image"], batch["label"]
            pred = self.segment(model, x).to(y.device)
            if surface is not None:
                surface.update(pred, y, self.spacing)
            for b in range(x.shape[0]):
                sums.add(pred[b, 0], y[b, 0])
        out = sums.result()
        if surface is not None:
            out.update(surface.result(self.class_names))
        return out

    def run_facts(self) -> dict:
        """What ``summary.json`` records of this task beyond the metrics: the run's ``fold`` when it has one."""
        return {"fold": self.state["fold"]} if "fold" in self.state else {}

    def state_dict(self) -> dict:
        return dict(self.state)

    def load_state_dict(self, state: dict) -> None:
        self.state.update(state or {})


@dataclass
class InferenceOptions:
    """Whole-volume inference settings (MONAI's ``sliding_window_inference`` and post-processing).

    ``mode``: window blending, ``constant`` (MONAI's default) or ``gaussian`` (weights fall off from the window
    centre with ``sigma_scale`` x the window size). ``sw_device`` / ``device``: where the windows run and where the
    stitched output lives (None: the input's device). ``tta_flips``: test-time flips, ``none``, ``single`` (one
    flip per spatial axis + the original: 4 passes) or ``all`` (the 8 combinations of axis flips, nnU-Net's
    mirroring); their softmax outputs are averaged. ``largest_component``: keep each organ's largest connected
    component. ``surface_metrics``: also HD95 (mm) and surface Dice at ``surface_tolerance_mm`` per organ.
    """

    mode: str = "constant"
    sigma_scale: float = 0.125
    sw_device: str | None = None
    device: str | None = None
    tta_flips: str = "none"
    largest_component: bool = False
    surface_metrics: bool = False
    surface_tolerance_mm: float = 2.0

    def __post_init__(self) -> None:
        if self.mode not in ("constant", "gaussian"):
            raise ValueError(f"inference mode must be 'constant' or 'gaussian', got {self.mode!r}")
        if self.tta_flips not in TTA_FLIPS:
            raise ValueError(f"tta_flips must be one of {sorted(TTA_FLIPS)}, got {self.tta_flips!r}")
        if not self.sigma_scale > 0:  # MONAI would take a negative one without a word
            raise ValueError(f"sigma_scale must be > 0 (the Gaussian's sigma as a fraction of the window), got "
                             f"{self.sigma_scale}")
        if not self.surface_tolerance_mm >= 0:
            raise ValueError(f"surface_tolerance_mm must be >= 0, got {self.surface_tolerance_mm}")


TTA_FLIPS = {
    "none": [()],
    "single": [(), (2,), (3,), (4,)],
    "all": [(), (2,), (3,), (4,), (2, 3), (2, 4), (3, 4), (2, 3, 4)],
}


def flip_axes(kind: str) -> list[tuple[int, ...]]:
    """The tensor axes ``(B, C, H, W, D)`` flipped in each test-time pass (``()``: the original)."""
    return TTA_FLIPS[kind]


class SurfaceMetrics:
    """Per-organ HD95 (mm) and surface Dice (MONAI ``HausdorffDistanceMetric(percentile=95)`` and
    ``SurfaceDiceMetric``) accumulated over volumes; organs absent from a volume's ground truth are left out."""

    def __init__(self, num_classes: int, tolerance_mm: float):
        self.k = num_classes
        self.hd = HausdorffDistanceMetric(include_background=False, percentile=95, reduction="none")
        self.nsd = SurfaceDiceMetric([tolerance_mm] * (num_classes - 1), include_background=False,
                                     reduction="none")
        self.rows: list[torch.Tensor] = []

    def update(self, pred: torch.Tensor, label: torch.Tensor, spacing: Sequence[float] | None = None) -> None:
        """``pred``, ``label``: ``(B, 1, H, W, D)`` label maps; ``spacing``: voxel size in mm (default 1)."""
        p, y = one_hot(pred.long(), self.k), one_hot(label.long(), self.k)
        kw = {"spacing": list(spacing)} if spacing is not None else {}
        hd = self.hd(p, y, **kw).float().cpu()
        nsd = self.nsd(p, y, **kw).float().cpu()
        absent = (y[:, 1:].flatten(2).sum(-1) == 0).cpu()
        missed = (p[:, 1:].flatten(2).sum(-1) == 0).cpu() & ~absent  # MONAI gives NaN: the distance is infinite
        hd[missed] = float("inf")
        hd[absent], nsd[absent] = float("nan"), float("nan")
        self.rows.append(torch.stack([hd, nsd], 1))  # (B, 2, K-1)

    def result(self, class_names: Sequence[str]) -> dict[str, Any]:
        """``hd95_<organ>``, ``nsd_<organ>`` and their means over organs (NaN-aware). An organ the prediction
        misses in a volume whose reference has it makes that volume's HD95 infinite: ``hd95_<organ>`` (and
        ``mean_hd95``) is then ``inf``, and ``hd95_notes`` says in how many volumes and gives the mean over the
        others (as the Dice table marks the classes it cannot count)."""
        if not self.rows:
            return {}
        allr = torch.cat(self.rows)  # (N, 2, K-1)
        out: dict[str, Any] = {}
        notes = []
        for j, name in enumerate(class_names[1:]):
            for m, key in ((0, "hd95"), (1, "nsd")):
                v = allr[:, m, j]
                finite, missed = v[torch.isfinite(v)], int(torch.isinf(v).sum())
                if missed:
                    rest = f"{float(finite.mean()):.4g} mm" if len(finite) else "none"
                    notes.append(f"hd95_{name} is inf: the prediction has no {name} voxel in {missed} of "
                                 f"{missed + len(finite)} volume(s) whose reference has it (the distance to an empty "
                                 f"prediction is infinite); the mean over the other {len(finite)}: {rest}")
                    out[f"{key}_{name}"] = float("inf")
                elif len(finite):
                    out[f"{key}_{name}"] = float(finite.mean())
        for key in ("hd95", "nsd"):
            vals = [v for k, v in out.items() if k.startswith(key + "_")]
            if vals:
                out[f"mean_{key}"] = sum(vals) / len(vals)
        if notes:
            out["hd95_notes"] = notes
        return out


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
