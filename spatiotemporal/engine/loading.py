"""The trainer's side of data loading: worker cap, RNG isolation of in-process loading, counting of
skipped inputs and transfer of batches to the device."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

import torch

from .rng import get_host_rng_state, set_host_rng_state

__all__ = ["available_cores", "describe_paths", "move_to_device", "rng_isolated", "SkipCounter"]

_MAX_EXAMPLES = 20


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def move_to_device(batch: Any, device: torch.device, non_blocking: bool = False) -> Any:
    """Tensors anywhere in nested dicts / lists / tuples go to ``device``; other values are kept."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, dict):
        return {k: move_to_device(v, device, non_blocking) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(move_to_device(v, device, non_blocking) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(v, device, non_blocking) for v in batch)
    return batch


def describe_paths(paths: list[str], reasons: dict[str, str] | None = None, n: int = 3) -> str:
    """Up to ``n`` of ``paths``, the first with its reason when ``reasons`` has it: ``a (reason), b, c, ...``."""
    if not paths:
        return "no path reported"
    why = (reasons or {}).get(paths[0])
    return ", ".join([f"{paths[0]} ({why})" if why else paths[0], *paths[1:n]]) + (", ..." if len(paths) > n else "")


def rng_isolated(iterable: Iterable[Any]) -> Iterator[Any]:
    """Iterate without letting in-process loading (``seed_item`` reseeds the globals) touch the
    main process's Python / NumPy / torch RNG streams."""
    it = iter(iterable)
    while True:
        state = get_host_rng_state()
        try:
            item = next(it)
        except StopIteration:
            return
        finally:
            set_host_rng_state(state)
        yield item


class SkipCounter:
    """Inputs a loader skipped on this rank: every occurrence (``total``; ``current``: this epoch or
    evaluation), the distinct paths (``files``), a few ``examples`` (run; ``current_examples``) and why each
    example was skipped (``reasons``: path -> the first reason given for it)."""

    def __init__(self) -> None:
        self.total = 0
        self.current = 0
        self.files: set[str] = set()
        self.examples: list[str] = []
        self.current_examples: list[str] = []
        self.reasons: dict[str, str] = {}

    def pop_from(self, batch: Any) -> Any:
        """Count ``batch["skipped"]`` (a list of paths, or a number), keep the ``batch["skip_reasons"]`` (one per
        path) of the examples, and return the batch without either."""
        if not (isinstance(batch, dict) and "skipped" in batch):
            return batch
        batch = dict(batch)
        skipped = batch.pop("skipped")
        reasons = batch.pop("skip_reasons", None) or []
        paths = [str(p) for p in skipped] if isinstance(skipped, (list, tuple)) else []
        n = len(paths) if isinstance(skipped, (list, tuple)) else int(skipped)
        self.total += n
        self.current += n
        self.files.update(paths)
        for examples in (self.examples, self.current_examples):
            examples.extend(paths[: max(0, _MAX_EXAMPLES - len(examples))])
        for path, why in zip(paths, reasons):
            if why and path not in self.reasons and (path in self.examples or path in self.current_examples):
                self.reasons[path] = why
        return batch

    def start_period(self) -> None:
        """A new epoch or evaluation: ``current`` counts from 0 again."""
        self.current = 0
        self.current_examples = []
        self.reasons = {p: why for p, why in self.reasons.items() if p in self.examples}

    def describe_current(self) -> str:
        """This epoch's or evaluation's first examples, the first with its reason (:func:`describe_paths`)."""
        return describe_paths(self.current_examples, self.reasons)

    def state_dict(self) -> dict[str, Any]:
        return {"total": self.total, "current": self.current, "files": sorted(self.files),
                "examples": list(self.examples), "current_examples": list(self.current_examples),
                "reasons": dict(self.reasons)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.total, self.current = state["total"], state["current"]
        self.files = set(state["files"])
        self.examples, self.current_examples = list(state["examples"]), list(state["current_examples"])
        self.reasons = dict(state.get("reasons", {}))  # checkpoints from before the reasons have none

    def merge(self, other: SkipCounter) -> None:
        """Add ``other``'s run totals (a resume onto fewer ranks gathers every rank's counts on rank 0)."""
        self.total += other.total
        self.current += other.current
        self.files |= other.files
        self.examples = (self.examples + other.examples)[:_MAX_EXAMPLES]
        self.current_examples = (self.current_examples + other.current_examples)[:_MAX_EXAMPLES]
        self.reasons = {**other.reasons, **self.reasons}
