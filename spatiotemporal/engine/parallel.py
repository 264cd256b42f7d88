"""How the trainer spreads a model over processes: the table of ``train.parallel`` modes, ``ddp``
(:mod:`.replicated`) and ``fsdp`` (:mod:`.fsdp`)."""

from __future__ import annotations

import logging

from ..utils.config import ConfigError
from .distributed import DistInfo
from .fsdp import FullyShardedMode
from .replicated import ReplicatedMode

__all__ = ["PARALLEL_MODES", "ReplicatedMode", "parallel_mode"]

log = logging.getLogger("spatiotemporal.engine")

#: ``train.parallel`` value -> mode class (every mode has :class:`ReplicatedMode`'s interface).
PARALLEL_MODES: dict[str, type[ReplicatedMode]] = {mode.name: mode for mode in (ReplicatedMode, FullyShardedMode)}


def parallel_mode(name: str, dist: DistInfo, find_unused_parameters: bool = False) -> ReplicatedMode:
    """The mode ``train.parallel`` names."""
    if name not in PARALLEL_MODES:
        raise ConfigError(f"train.parallel must be one of {sorted(PARALLEL_MODES)}, got {name!r}")
    if name == FullyShardedMode.name and dist.world_size == 1:
        log.warning("train.parallel=fsdp in a single process (not started by torchrun): nothing is sharded, the "
                    "run trains as one plain process; start it with torchrun --nproc_per_node N to shard")
    return PARALLEL_MODES[name](dist, find_unused_parameters)
