"""``train.ema``: an exponential moving average of the model's weights, through timm's ``ModelEmaV3``.

Off by default (``decay`` unset), as in the published MViTv2-S, VideoMAE, TimeSformer and SegFormer3D recipes.
When on, the EMA is updated after each optimiser step with the run's step count (timm's ``train.py``
convention: the first update copies the model, ``warmup`` ramps the decay up as ``1 - (1 + step) ** -2/3``),
checkpointed in ``last.pt`` and evaluated beside the model at every evaluation (``val_ema/*`` metrics); with
``eval`` it also picks (and fills) ``best.pt``.

Under DDP every rank keeps the EMA of its own (identical) bare model, so the copies stay equal without
communication. FSDP2 is refused: the EMA would be a full copy of a model sharded because it does not fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from timm.utils import ModelEmaV3
from torch import nn

from ..utils.config import ConfigError

__all__ = ["EmaConfig", "build_ema", "check_ema_parallel"]


@dataclass
class EmaConfig:
    """``decay``: the EMA decay per optimiser step, in (0, 1); None: no EMA. ``warmup``: timm's ``use_warmup``
    (the decay grows to ``decay`` over the first steps). ``eval``: pick ``best.pt`` by the EMA's metrics and save
    its weights there (the model's and the EMA's metrics are both reported either way)."""

    decay: float | None = None
    warmup: bool = False
    eval: bool = False

    def __post_init__(self) -> None:
        if self.decay is not None and not (math.isfinite(self.decay) and 0 < self.decay < 1):
            raise ConfigError(f"train.ema.decay must be in (0, 1) (e.g. 0.9999) or null (off), got {self.decay}")
        if self.eval and self.decay is None:
            raise ConfigError("train.ema.eval=true needs an EMA: set train.ema.decay (e.g. 0.9999) or "
                              "train.ema.eval=false")

    @property
    def on(self) -> bool:
        return self.decay is not None


def check_ema_parallel(cfg: EmaConfig, parallel: str) -> None:
    """One line when the EMA is asked for under a parallel mode that cannot keep it (FSDP2)."""
    if cfg.on and parallel == "fsdp":
        raise ConfigError("train.ema.decay is not supported with train.parallel=fsdp (the EMA would be a full "
                          "copy of the sharded model on every rank): unset train.ema.decay or use "
                          "train.parallel=ddp")


def build_ema(model: nn.Module, cfg: EmaConfig, parallel: str) -> ModelEmaV3 | None:
    """The EMA of the bare ``model`` (a copy on its device and in its dtype), or None when ``cfg`` is off."""
    check_ema_parallel(cfg, parallel)
    if not cfg.on:
        return None
    return ModelEmaV3(model, decay=cfg.decay, use_warmup=cfg.warmup)
