"""The shape of a run, computed before it starts: batches and optimiser steps per epoch, the effective
global batch, and warnings for settings that do something other than what they seem to say."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..utils.config import ConfigError
from .train_config import TrainConfig

__all__ = ["RunPlan", "plan_run"]


@dataclass(frozen=True)
class RunPlan:
    samples_per_rank: int
    world_size: int
    batches_per_epoch: int  # micro-batches per rank and epoch
    steps_per_epoch: int  # optimiser steps
    scheduled_steps: int  # epochs * steps_per_epoch: what the lr schedule spans
    total_steps: int  # scheduled_steps cut by max_steps
    global_batch: int  # batch_size * world_size * accum_steps

    def describe(self, cfg: TrainConfig) -> str:
        return (f"effective global batch {self.global_batch} (batch_size {cfg.batch_size} x {self.world_size} "
                f"rank(s) x accum_steps {cfg.accum_steps}); {self.steps_per_epoch} optimiser steps per epoch "
                f"({self.batches_per_epoch} batches from {self.samples_per_rank} samples per rank), "
                f"{self.total_steps} in total")

    def warnings(self, cfg: TrainConfig, warmup_steps: int = 0) -> list[str]:
        """One line per surprising consequence of the settings."""
        out = []
        partial = self.batches_per_epoch % cfg.accum_steps
        if partial:
            out.append(f"every epoch ends with a partial accumulation window: {partial} of accum_steps "
                       f"{cfg.accum_steps} micro-batches (its gradients are averaged over those {partial})")
        if self.total_steps < self.scheduled_steps:
            first = " (the first epoch is not completed)" if self.total_steps < self.steps_per_epoch else ""
            out.append(f"train.max_steps={cfg.max_steps} stops the run after "
                       f"{self.total_steps / self.steps_per_epoch:.2f} of {cfg.epochs} epochs{first}: the lr "
                       f"schedule spans {self.scheduled_steps} steps and does not reach its end")
        if warmup_steps > self.total_steps:
            out.append(f"the lr warm-up lasts {warmup_steps} optimiser steps, longer than the run "
                       f"({self.total_steps}): the lr never reaches train.optim.lr={cfg.optim.lr:g}")
        return out


def plan_run(samples_per_rank: int, world_size: int, cfg: TrainConfig) -> RunPlan:
    """``samples_per_rank``: the training sampler's length on this rank."""
    n, b = samples_per_rank, cfg.batch_size
    nb = n // b if cfg.drop_last else math.ceil(n / b)
    if nb == 0:
        raise ConfigError(f"the training set gives no batch: {n} samples per rank < train.batch_size {b} with "
                          f"train.drop_last=true: lower --batch-size or set train.drop_last=false")
    steps_per_epoch = math.ceil(nb / cfg.accum_steps)
    scheduled = cfg.epochs * steps_per_epoch
    total = scheduled if cfg.max_steps is None else min(scheduled, cfg.max_steps)
    return RunPlan(n, world_size, nb, steps_per_epoch, scheduled, total, b * world_size * cfg.accum_steps)
