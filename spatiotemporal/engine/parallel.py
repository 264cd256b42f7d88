"""How the trainer spreads a model over processes: the table of ``train.parallel`` modes, ``ddp``
(:mod:`.replicated`) and ``fsdp`` (:mod:`.fsdp`)."""

from __future__ import annotations

from ..utils.config import ConfigError
from .distributed import DistInfo
from .fsdp import FullyShardedMode
from .replicated import ReplicatedMode

__all__ = ["PARALLEL_MODES", "ReplicatedMode", "parallel_mode"]

#: ``train.parallel`` value -> mode class (every mode has :class:`ReplicatedMode`'s interface).
PARALLEL_MODES: dict[str, type[ReplicatedMode]] = {mode.name: mode for mode in (ReplicatedMode, FullyShardedMode)}


def parallel_mode(name: str, dist: DistInfo, find_unused_parameters: bool = False) -> ReplicatedMode:
    """The mode ``train.parallel`` names."""
    if name not in PARALLEL_MODES:
        raise ConfigError(f"train.parallel must be one of {sorted(PARALLEL_MODES)}, got {name!r}")
    return PARALLEL_MODES[name](dist, find_unused_parameters)
