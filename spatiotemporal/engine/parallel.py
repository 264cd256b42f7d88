"""How the trainer spreads a model over processes: ``train.parallel`` = ``ddp`` (this module) or ``fsdp``
(:mod:`.fsdp`). The trainer asks its mode to prepare the model, to skip gradient synchronisation inside an
accumulation window, for the full model and optimiser state a checkpoint holds (and to load it back), and
for the model's evaluation context."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .config import ConfigError
from .distributed import DistInfo

__all__ = ["ReplicatedMode", "parallel_mode"]

log = logging.getLogger("spatiotemporal.engine")


class ReplicatedMode:
    """One process, or DDP under torchrun: every rank holds the whole model, its gradients and optimiser state.

    Checkpoints hold ``model.state_dict()`` and ``optimizer.state_dict()`` (parameters by index).
    """

    name = "ddp"

    def __init__(self, dist: DistInfo, find_unused_parameters: bool = False) -> None:
        self.dist = dist
        self.find_unused_parameters = find_unused_parameters
        self.ddp: DistributedDataParallel | None = None

    def shard(self, model: nn.Module) -> None:
        """Called before the optimiser is built (nothing to do for replicas)."""

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module training steps call (DDP with more than one process)."""
        if self.dist.world_size == 1:
            return model
        self.ddp = DistributedDataParallel(
            model, device_ids=[self.dist.device.index] if self.dist.device.type == "cuda" else None,
            find_unused_parameters=self.find_unused_parameters,
        )
        return self.ddp

    def sync_gradients(self, sync: bool):
        """Context of one micro-batch's forward and backward; gradients are reduced only when ``sync``."""
        return self.ddp.no_sync() if self.ddp is not None and not sync else contextlib.nullcontext()

    def clip_grad_norm(self, params: list[torch.Tensor], max_norm: float) -> float:
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))

    # ---------------------------------------------------------------- checkpoint state (collective)
    def model_state_dict(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The full state dict (valid on rank 0, the writer)."""
        return model.state_dict()

    def optimizer_state_dict(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        return optimizer.state_dict()

    def load_model_state_dict(self, model: nn.Module, sd: dict[str, torch.Tensor]) -> None:
        model.load_state_dict(sd)

    def load_optimizer_state_dict(self, model: nn.Module, optimizer: torch.optim.Optimizer, sd: dict) -> None:
        optimizer.load_state_dict(sd)

    @contextlib.contextmanager
    def evaluation(self, model: nn.Module) -> Iterator[None]:
        """Grad mode of an evaluation (each rank evaluates its own part of the data)."""
        with torch.inference_mode():
            yield


def parallel_mode(name: str, dist: DistInfo, find_unused_parameters: bool = False) -> ReplicatedMode:
    """The mode ``train.parallel`` names."""
    if name == "ddp":
        return ReplicatedMode(dist, find_unused_parameters)
    if name == "fsdp":
        from .fsdp import FullyShardedMode

        if dist.world_size == 1:
            log.warning("train.parallel=fsdp in a single process (not started by torchrun): nothing is sharded, the "
                        "run trains as one plain process; start it with torchrun --nproc_per_node N to shard")

        return FullyShardedMode(dist, find_unused_parameters)
    raise ConfigError(f"train.parallel must be 'ddp' or 'fsdp', got {name!r}")
