"""The contract between the engine and a task (video classification, 3D segmentation, ...)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable

import torch

__all__ = ["Task"]


@runtime_checkable
class Task(Protocol):
    """What a trainer needs from a task. Optional methods, used when present:

    - ``on_batch(batch) -> batch``: after the engine moved the batch to the device (mixup, channels-last).
    - ``after_optimizer_step(model, step)``: e.g. an EMA update.
    - ``state_dict()`` / ``load_state_dict(state)``: task state saved in checkpoints (e.g. EMA weights).
    - ``run_facts() -> dict``: facts of the run added to ``summary.json`` (e.g. the cross-validation fold).

    ``evaluate`` must reduce its metrics across ranks (``engine.all_reduce_sum``); its loader yields
    batches already on the device. Both methods get the unwrapped model (``train_step`` the DDP wrapper).

    Empty inputs: ``train_step`` on a batch whose inputs were all skipped returns ``(0 * sum of the
    parameters, {}, 0)``, a zero loss that still reaches every parameter (DDP needs the backward on
    every rank). ``evaluate`` should report ``num_samples``: an evaluation with ``num_samples == 0`` is
    an error for the trainer (without that key the trainer trusts the metrics).
    """

    primary_metric: str
    higher_is_better: bool

    def train_step(self, model: torch.nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, float], int]:
        """Forward + loss of one (micro-)batch: ``(scalar loss, logs, number of samples)``."""
        ...

    def evaluate(self, model: torch.nn.Module, loader: Iterable[Any]) -> dict[str, float]:
        """Metrics over the whole validation set (already reduced across ranks)."""
        ...
