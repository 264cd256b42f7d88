"""``train.parallel=fsdp``: FSDP2 (``torch.distributed.fsdp.fully_shard``) for models too large to replicate.

Every element of the model's ``nn.ModuleList``s (the transformer blocks) is a sharding unit, then the root
holds the rest. Parameters, gradients and optimiser state are sharded over the ranks; a unit's weights are
gathered for its forward and backward only.

Checkpoints stay single, atomic, weights-only files of the same layout as DDP's: the full model and optimiser
state dicts are gathered on rank 0 through ``torch.distributed.checkpoint.state_dict`` (offloaded to the
CPU) and written there, so ``best.pt`` loads anywhere without a process group, the finiteness checks and
atomic writes are the same code, and a run can be resumed under another world size. The price is one full
copy of the model and optimiser state in rank 0's host memory while writing; a sharded DCP directory would
avoid it for models whose state does not fit one host. The optimiser state is keyed by parameter name
(DDP's by index): a checkpoint resumes in the mode that wrote it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.fsdp import FSDPModule, fully_shard
from torch.distributed.tensor import DTensor

from .distributed import is_distributed
from .replicated import ReplicatedMode

__all__ = ["FullyShardedMode", "sharding_units"]

_GATHER = StateDictOptions(full_state_dict=True, cpu_offload=True)
_SCATTER = StateDictOptions(full_state_dict=True)


def sharding_units(model: nn.Module) -> list[nn.Module]:
    """The modules sharded one by one: the elements of every ``nn.ModuleList`` (blocks, stages)."""
    return [m for lst in model.modules() if isinstance(lst, nn.ModuleList) for m in lst]


class FullyShardedMode(ReplicatedMode):
    """FSDP2 over the torchrun process group. In a single process nothing is sharded, and checkpoints keep
    this mode's layout (a run may continue under torchrun, or the other way round)."""

    name = "fsdp"
    sharded: nn.Module | None = None

    def shard(self, model: nn.Module) -> None:
        if not is_distributed():
            return
        for unit in sharding_units(model):
            fully_shard(unit)
        fully_shard(model)
        self.sharded = model

    def wrap(self, model: nn.Module) -> nn.Module:
        return model

    def sync_gradients(self, sync: bool):
        if self.sharded is not None:
            self.sharded.set_requires_gradient_sync(sync)
        return contextlib.nullcontext()

    def clip_grad_norm(self, params: list[torch.Tensor], max_norm: float) -> float:
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        return float(norm.full_tensor() if isinstance(norm, DTensor) else norm)

    def model_state_dict(self, model: nn.Module) -> dict[str, torch.Tensor]:
        return get_model_state_dict(model, options=_GATHER)

    def optimizer_state_dict(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        return get_optimizer_state_dict(model, optimizer, options=_GATHER)

    def load_model_state_dict(self, model: nn.Module, sd: dict[str, torch.Tensor]) -> None:
        set_model_state_dict(model, sd, options=_SCATTER)

    def load_optimizer_state_dict(self, model: nn.Module, optimizer: torch.optim.Optimizer, sd: dict) -> None:
        set_optimizer_state_dict(model, optimizer, sd, options=_SCATTER)

    @contextlib.contextmanager
    def evaluation(self, model: nn.Module) -> Iterator[None]:
        """The whole model is gathered once (weights only) and kept for the evaluation, so ranks run their own
        number of forwards without collectives; sharded again afterwards."""
        fsdp = [m for m in model.modules() if isinstance(m, FSDPModule)]
        for m in fsdp:
            m.set_reshard_after_forward(False, recurse=False)
            m.unshard()
        try:
            with torch.no_grad():
                yield
        finally:
            for m in fsdp:  # back to fully_shard's defaults: the root keeps its weights for the backward
                m.reshard()
                m.set_reshard_after_forward(m is not model, recurse=False)
