"""``TrainConfig``: the engine's section of a recipe (run directory, loop, precision, checkpoints)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..utils.config import ConfigError
from .ema import EmaConfig, check_ema_parallel
from .optim import OptimConfig
from .schedule import ScheduleConfig

__all__ = ["TrainConfig"]


@dataclass
class TrainConfig:
    """Generic training-loop settings; sizes are per process (global batch = batch_size * world * accum).

    ``num_workers`` is capped at the CPU cores this process may use (with a warning). ``checkpoint_every``:
    a mid-epoch ``last.pt`` of step ``s`` is written at step ``s + 1``, once that step's finite loss shows
    the weights are good. ``log_every``: the last step of every epoch (and of the run) is logged too; off a
    terminal, ``log_interval_s`` adds a plain progress line (not a metrics event) when none came for that long.
    """

    out: str = "runs/default"
    epochs: int = 1
    max_steps: int | None = None  # stop after this many optimiser steps (the schedule still spans epochs)
    batch_size: int = 8
    eval_batch_size: int | None = None  # None: batch_size
    accum_steps: int = 1
    clip_grad: float | None = None  # max global grad norm; None: off
    amp: Literal["none", "bf16", "fp16", "auto"] = "auto"  # auto: bf16 on CUDA and on CPUs with native bf16
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    seed: int = 0
    num_workers: int = 4  # DataLoader workers per process, at most the available cores
    drop_last: bool = True  # drop the last incomplete training batch
    checkpoint_every: int = 0  # optimiser steps between mid-epoch checkpoints (last.pt); 0: epoch ends only
    eval_every: int = 1  # epochs; the last epoch is always evaluated; 0: last epoch only
    log_every: int = 10  # optimiser steps (and each epoch's last step)
    log_interval_s: float = 60.0  # off a terminal, also a progress line after this many seconds; 0: off
    resume: bool = False  # continue from <out>/checkpoints/last.pt
    init: str | None = None  # weights to start from; handled by the caller
    progress: Literal["auto", "always", "never"] = "auto"  # auto: only on a terminal
    throughput_unit: str = "samples"  # e.g. clips, volumes, images
    find_unused_parameters: bool = False
    parallel: Literal["ddp", "fsdp"] = "ddp"  # fsdp: FSDP2 under torchrun, for models too large to replicate
    compile: bool = False  # torch.compile the model (training and evaluation); eager if compilation fails
    tensorboard: bool = True
    optim: OptimConfig = field(default_factory=OptimConfig)
    sched: ScheduleConfig = field(default_factory=ScheduleConfig)
    ema: EmaConfig = field(default_factory=EmaConfig)  # weight EMA (timm ModelEmaV3); off unless ema.decay is set

    def __post_init__(self) -> None:
        """Refuse values that would train nothing or fail late (after the model and data are built)."""
        at_least = {"epochs": 1, "batch_size": 1, "accum_steps": 1, "log_every": 1, "max_steps": 1,
                    "eval_batch_size": 1, "num_workers": 0, "checkpoint_every": 0, "eval_every": 0,
                    "log_interval_s": 0}
        for name, low in at_least.items():
            value = getattr(self, name)
            if value is not None and value < low:
                flag = {"epochs": " (--epochs)", "batch_size": " (--batch-size)", "max_steps": " (--max-steps)",
                        "num_workers": " (--workers)"}.get(name, "")
                unset = " or unset" if name in ("max_steps", "eval_batch_size") else ""
                raise ConfigError(f"train.{name}{flag} must be >= {low}{unset}, got {value}")
        if self.clip_grad is not None and not self.clip_grad > 0:
            raise ConfigError(f"train.clip_grad must be > 0 or null (off), got {self.clip_grad}")
        check_ema_parallel(self.ema, self.parallel)
