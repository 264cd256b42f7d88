"""Learning-rate schedules updated per optimiser step (fractional epochs), with a state dict.

``cosine``: linear warm-up from ``warmup_lr`` then half-cosine from ``lr`` to ``min_lr`` at the end of
training. ``step``: piecewise constant over epochs, either ``gamma`` at each of ``milestones`` or the
explicit relative ``lrs`` that start at ``steps`` (the official TimeSformer: steps [0, 11, 14],
lrs [1, 0.1, 0.01], i.e. PySlowFast ``steps_with_relative_lrs``). ``constant``: ``lr`` after warm-up.
``rsqrt``: Scaling ViT's schedule (big_vision ``decay_type="rsqrt"``) as one schedule: linear warm-up, then
``lr / sqrt(1 + (step - warmup) / timescale)``, times a linear cooldown ``min(1, (total - step) / cooldown)`` that
reaches zero at the last step; the three factors multiply, as in big_vision (a cooldown may overlap the warm-up).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from ..utils.config import ConfigError
from .checkpoint import CheckpointError

__all__ = ["ScheduleConfig", "LRSchedule"]


@dataclass
class ScheduleConfig:
    """Schedule settings; epochs may be fractional, ``warmup_steps`` > 0 overrides ``warmup_epochs``."""

    name: Literal["cosine", "step", "constant", "rsqrt"] = "cosine"
    warmup_epochs: float = 0.0
    warmup_steps: int = 0
    warmup_lr: float = 0.0
    min_lr: float = 0.0
    milestones: list[float] = field(default_factory=list)
    gamma: float = 0.1
    steps: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    # rsqrt: steps > 0 override epochs; a timescale of 0 / 0 is big_vision's default, 10k steps
    timescale_epochs: float = 0.0
    timescale_steps: int = 0
    cooldown_epochs: float = 0.0
    cooldown_steps: int = 0


class LRSchedule:
    """Sets every param group's lr from the optimiser-step count, like ``LambdaLR`` stepped per update.

    Group ``g`` gets ``base_lr_g * lr(step) / base_lr`` where ``base_lr_g = base_lr * g.get("lr_scale", 1)``
    (timm's layer-decay groups carry ``lr_scale``). ``step()`` is called after each optimiser step;
    the lr of update ``s`` (0-based) is ``lr_at(s)``.
    """

    def __init__(
        self, optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, base_lr: float, steps_per_epoch: int,
        epochs: float,
    ) -> None:
        if steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
        if cfg.name == "step" and cfg.lrs:
            if len(cfg.steps) != len(cfg.lrs):
                raise ConfigError(
                    f"sched.steps {cfg.steps} and sched.lrs {cfg.lrs} must have the same length"
                )
            if cfg.steps[0] != 0 or list(cfg.steps) != sorted(cfg.steps):
                raise ConfigError(f"sched.steps must be increasing and start at 0, got {cfg.steps}")
        self.optimizer = optimizer
        self.cfg = cfg
        self.base_lr = float(base_lr)
        self.steps_per_epoch = int(steps_per_epoch)
        self.total_steps = max(1, round(epochs * steps_per_epoch))
        self.warmup = cfg.warmup_steps if cfg.warmup_steps > 0 else round(cfg.warmup_epochs * steps_per_epoch)
        self.cooldown = cfg.cooldown_steps if cfg.cooldown_steps > 0 else round(cfg.cooldown_epochs * steps_per_epoch)
        self.timescale = (cfg.timescale_steps if cfg.timescale_steps > 0 else
                          round(cfg.timescale_epochs * steps_per_epoch) if cfg.timescale_epochs > 0 else 10_000)
        self.group_base = [self.base_lr * g.get("lr_scale", 1.0) for g in optimizer.param_groups]
        self.last_step = 0
        self._apply()

    def _main(self, step: int) -> float:
        """The schedule without warm-up, as an absolute lr."""
        c = self.cfg
        if c.name == "constant":
            return self.base_lr
        if c.name == "rsqrt":  # big_vision's product form, warm-up included (``warmup_lr`` is not used)
            lr = self.base_lr
            if step > self.warmup:
                lr /= math.sqrt((step - self.warmup + self.timescale) / self.timescale)
            if self.warmup:
                lr *= min(1.0, step / self.warmup)
            if self.cooldown:
                lr *= min(1.0, max(0.0, (self.total_steps - step) / self.cooldown))
            return lr
        if c.name == "cosine":
            span = max(1, self.total_steps - self.warmup)
            p = min(1.0, max(0.0, (step - self.warmup) / span))
            return c.min_lr + (self.base_lr - c.min_lr) * 0.5 * (1.0 + math.cos(math.pi * p))
        epoch = step / self.steps_per_epoch
        if c.lrs:
            return self.base_lr * c.lrs[bisect.bisect_right(c.steps, epoch) - 1]
        return self.base_lr * c.gamma ** bisect.bisect_right(sorted(c.milestones), epoch)

    def lr_at(self, step: int) -> float:
        """Absolute lr (of a group with ``lr_scale`` 1) for optimiser update ``step`` (0-based)."""
        if step < self.warmup and self.cfg.name != "rsqrt":
            target = self._main(self.warmup)
            return self.cfg.warmup_lr + (target - self.cfg.warmup_lr) * step / self.warmup
        return self._main(step)

    def _apply(self) -> None:
        factor = self.lr_at(self.last_step) / self.base_lr if self.base_lr else 0.0
        for g, base in zip(self.optimizer.param_groups, self.group_base):
            g["lr"] = base * factor

    def step(self) -> None:
        self.last_step += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {"last_step": self.last_step, "steps_per_epoch": self.steps_per_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("steps_per_epoch", self.steps_per_epoch) != self.steps_per_epoch:
            raise CheckpointError(
                f"checkpoint schedule has {state['steps_per_epoch']} optimiser steps per epoch, this run "
                f"{self.steps_per_epoch}: batch size, accumulation, world size or dataset changed"
            )
        self.last_step = int(state["last_step"])
        self._apply()
