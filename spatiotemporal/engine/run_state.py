"""What the trainer counts while it runs: the run's position and totals (identical on every rank), the
current accumulation window (this rank) and the current logging window."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from .distributed import all_reduce_sum

__all__ = ["RunState", "AccumWindow", "Meter"]


@dataclass
class RunState:
    """Position and totals of the run; the sums come from each step's all-reduce, so every rank agrees."""

    step: int = 0
    epoch: int = 0  # completed epochs
    batches_done: int = 0  # batches of the current epoch already trained (per rank)
    best: dict[str, Any] = field(default_factory=dict)  # {"value", "step", "epoch", "weights"}
    last_eval: dict[str, float] = field(default_factory=dict)
    last_eval_ema: dict[str, float] = field(default_factory=dict)  # the weight EMA's (train.ema), when on
    elapsed_s: float = 0.0  # training wall time of earlier sessions
    # current epoch / whole run: sum of micro-batch mean losses, micro-batches with a sample, samples
    epoch_loss: float = 0.0
    epoch_usable: int = 0
    epoch_samples: int = 0
    run_loss: float = 0.0
    run_usable: int = 0
    samples_seen: int = 0
    train_time_s: float = 0.0  # time in the training loop (evaluation and checkpoint writes excluded)
    last_loss: float | None = None  # the last logged training loss
    val_skipped: int = 0  # validation inputs skipped, all evaluations, all ranks

    TOTALS = ("epoch_loss", "epoch_usable", "epoch_samples", "run_loss", "run_usable", "samples_seen",
              "train_time_s", "last_loss", "val_skipped")

    def totals(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.TOTALS}

    def load_totals(self, totals: dict[str, Any]) -> None:
        for k in self.TOTALS:
            if k in totals:
                setattr(self, k, totals[k])

    def add_step(self, loss: float, samples: int, usable: int) -> None:
        self.epoch_loss += loss
        self.run_loss += loss
        self.epoch_usable += usable
        self.run_usable += usable
        self.epoch_samples += samples
        self.samples_seen += samples

    def new_epoch(self) -> None:
        self.epoch_loss, self.epoch_usable, self.epoch_samples = 0.0, 0, 0


class AccumWindow:
    """The micro-batches of one optimiser step on this rank; the loss sum stays on the device."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.loss: torch.Tensor | None = None
        self.micro = 0
        self.usable = 0  # micro-batches with at least one sample
        self.samples = 0

    def add(self, loss: torch.Tensor, n: int) -> None:
        loss = loss.detach().double()
        self.loss = loss if self.loss is None else self.loss + loss
        self.micro += 1
        if n > 0:
            self.usable += 1
            self.samples += int(n)

    def reduce(self) -> tuple[float, int, int]:
        """``(loss sum, samples, usable micro-batches)`` over all ranks: one all-reduce, one device sync."""
        counts = torch.tensor([self.samples, self.usable], dtype=torch.float64, device=self.loss.device)
        loss, samples, usable = all_reduce_sum(torch.cat([self.loss.reshape(1), counts])).tolist()
        return loss, int(samples), int(usable)


class Meter:
    """Sums over the current logging window: loss, usable micro-batches and samples (all ranks, added per
    step) and the task's logs (this rank, reduced when logged). float64, so a resumed window adds up
    identically."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.loss = 0.0
        self.usable = 0
        self.samples = 0
        self.steps = 0
        self.logs: dict[str, torch.Tensor | float] = {}
        self.t0 = time.perf_counter()

    def add_step(self, loss: float, samples: int, usable: int) -> None:
        self.loss += loss
        self.usable += usable
        self.samples += samples
        self.steps += 1

    def add_logs(self, logs: dict[str, Any]) -> None:
        for k, v in logs.items():
            v = v.detach().double() if isinstance(v, torch.Tensor) else float(v)
            self.logs[k] = self.logs.get(k, 0.0) + v

    def state_dict(self) -> dict[str, Any]:
        return {"loss": self.loss, "logs": {k: float(v) for k, v in self.logs.items()}, "micro": self.usable,
                "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.reset()  # samples and time restart: throughput covers only what this process did
        self.loss = float(state["loss"])
        self.logs = {k: torch.tensor(v, dtype=torch.float64) for k, v in state["logs"].items()}
        self.usable, self.steps = state["micro"], state["steps"]
