"""Classification of images or video clips: CE / BCE loss, top-1 / top-5 with multi-view testing."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F

from ..engine import all_gather_object, all_reduce_sum
from ..utils.errors import UserInputError
from .losses import classification_loss


def top_classes(logits: torch.Tensor, names: list[str], k: int = 5) -> list[dict]:
    """``logits (K,)`` -> the ``k`` most probable classes as ``{"class", "index", "probability"}`` (softmax)."""
    probs = logits.float().softmax(-1)
    top = probs.topk(min(k, probs.numel()))
    return [{"class": names[i], "index": int(i), "probability": float(p)} for p, i in zip(top.values, top.indices)]


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks=(1, 5)) -> list[torch.Tensor]:
    """Number of samples whose label is among the top-k logits, for each k. ``logits (B, K)``, ``labels (B,)``."""
    maxk = min(max(ks), logits.shape[1])
    top = logits.topk(maxk, dim=1).indices
    hit = top == labels[:, None]
    return [hit[:, : min(k, maxk)].any(1).sum() for k in ks]


class ClassificationTask:
    """Batches are dicts with an input under ``input_key`` and ``label``.

    Training input ``(B, ...)``; evaluation input ``(B, ...)`` or multi-view ``(B, V, ...)`` whose view logits
    are averaged (``view_reduce="mean"``, default) or summed as the official TimeSformer does (``"sum"``).
    ``loss_fn(logits, targets)`` defaults to cross-entropy; ``mixup_fn(x, y) -> (x, soft_targets)`` is applied
    to training batches when given (timm Mixup). Extra ``state`` (e.g. the model spec and class names) is kept
    in checkpoints so a checkpoint rebuilds its model.
    """

    primary_metric = "top1"
    higher_is_better = True

    def __init__(
        self,
        input_key: str = "video",
        loss_fn: Callable | None = None,
        mixup_fn: Callable | None = None,
        view_reduce: str = "mean",
        state: dict | None = None,
    ):
        if view_reduce not in ("mean", "sum"):
            raise UserInputError(f"view_reduce must be 'mean' or 'sum', got {view_reduce!r}")
        self.input_key = input_key
        self.loss_fn = loss_fn or classification_loss()
        self.mixup_fn = mixup_fn
        self.view_reduce = view_reduce
        self.state = dict(state or {})

    def train_step(self, model: torch.nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict, int]:
        x, y = batch[self.input_key], batch["label"]
        if x.shape[0] == 0:  # every input of this batch was skipped as unreadable
            return sum(p.sum() * 0 for p in model.parameters()), {}, 0
        target = y
        if self.mixup_fn is not None:
            x, target = self.mixup_fn(x, y)
        logits = model(x)
        loss = self.loss_fn(logits, target)
        acc = (logits.argmax(1) == y).float().mean() if target is y else torch.zeros(())
        return loss, {"acc": acc.detach()}, int(x.shape[0])

    def combine_views(self, logits: torch.Tensor) -> torch.Tensor:
        """``(B, V, K) -> (B, K)``: the views of each input averaged (``mean``) or summed (``sum``, official)."""
        return logits.mean(1) if self.view_reduce == "mean" else logits.sum(1)

    def _logits(self, model: torch.nn.Module, x: torch.Tensor, multi_view: bool) -> torch.Tensor:
        if not multi_view:
            return model(x)
        b, v = x.shape[:2]
        return self.combine_views(model(x.flatten(0, 1)).view(b, v, -1))

    @torch.inference_mode()
    def evaluate(self, model: torch.nn.Module, loader: Iterable[dict[str, Any]],
                 per_class: bool = False) -> dict[str, Any]:
        """top-1 / top-5 (%), mean loss and sample count; ``per_class``: also ``per_class_top1``, the top-1 (%) of
        each label (a list indexed by label; None where the split has no sample of it)."""
        sums, hits, counts = None, None, None
        for batch in loader:
            x, y = batch[self.input_key], batch["label"]
            if x.shape[0] == 0:
                continue
            multi_view = x.ndim == (6 if self.input_key == "video" else 5)
            logits = self._logits(model, x, multi_view).float()
            loss = F.cross_entropy(logits, y, reduction="sum")
            vals = torch.stack([*topk_correct(logits, y), loss, torch.tensor(float(x.shape[0]), device=y.device)])
            sums = vals.double() if sums is None else sums + vals.double()
            k = logits.shape[1]
            h = torch.bincount(y[logits.argmax(1) == y], minlength=k).double()
            c = torch.bincount(y, minlength=k).double()
            hits, counts = (h, c) if hits is None else (hits + h, counts + c)
        device = next(model.parameters()).device
        sums = all_reduce_sum(sums if sums is not None else torch.zeros(4, dtype=torch.float64, device=device))
        n = max(float(sums[3]), 1.0)
        out: dict[str, Any] = {"top1": float(sums[0]) / n * 100, "top5": float(sums[1]) / n * 100,
                               "loss": float(sums[2]) / n, "num_samples": float(sums[3])}
        if per_class and hits is not None:
            hits, counts = all_reduce_sum(hits), all_reduce_sum(counts)
            out["per_class_top1"] = [float(h) / float(c) * 100 if c else None for h, c in zip(hits, counts)]
        return out

    def state_dict(self) -> dict:
        return dict(self.state)

    def load_state_dict(self, state: dict) -> None:
        self.state.update(state or {})


def mean_average_precision(scores: torch.Tensor, targets: torch.Tensor) -> float:
    """Macro mAP (%) over the classes with at least one positive: scikit-learn's ``average_precision_score`` per
    class. ``scores``, ``targets``: ``(N, K)``."""
    from sklearn.metrics import average_precision_score

    y, s = targets.numpy(), scores.numpy()
    keep = y.sum(0) > 0
    if not keep.any():
        return float("nan")
    return float(average_precision_score(y[:, keep], s[:, keep], average="macro")) * 100


class MultiLabelTask(ClassificationTask):
    """Multi-label classification: targets are multi-hot ``(B, K)``, loss ``BCEWithLogits``; evaluation reports
    ``map`` (macro mean average precision, %, classes with a positive), the loss and ``num_samples``; multi-view
    logits are combined as in :class:`ClassificationTask`."""

    primary_metric = "map"

    def __init__(self, input_key: str = "video", view_reduce: str = "mean", state: dict | None = None):
        super().__init__(input_key, loss_fn=F.binary_cross_entropy_with_logits, view_reduce=view_reduce, state=state)

    def train_step(self, model, batch):
        x, y = batch[self.input_key], batch["label"]
        if x.shape[0] == 0:
            return sum(p.sum() * 0 for p in model.parameters()), {}, 0
        return self.loss_fn(model(x), y.float()), {}, int(x.shape[0])

    @torch.inference_mode()
    def evaluate(self, model, loader):
        scores, targets = [], []
        for batch in loader:
            x, y = batch[self.input_key], batch["label"]
            if x.shape[0] == 0:
                continue
            multi_view = x.ndim == (6 if self.input_key == "video" else 5)
            scores.append(self._logits(model, x, multi_view).float().cpu())
            targets.append(y.float().cpu())
        parts = all_gather_object((scores, targets))
        scores = [s for p in parts for s in p[0]]
        targets = [t for p in parts for t in p[1]]
        if not scores:
            return {"map": float("nan"), "loss": float("nan"), "num_samples": 0.0}
        s, t = torch.cat(scores), torch.cat(targets)
        loss = float(F.binary_cross_entropy_with_logits(s, t))
        return {"map": mean_average_precision(s.sigmoid(), t), "loss": loss, "num_samples": float(len(s))}
