"""Global RNG states (Python, NumPy, torch CPU, CUDA) as plain tensors / ints, loadable with
``torch.load(..., weights_only=True)``; seeding itself is ``utils.seeding.seed_everything`` (re-exported)."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

from ..utils.seeding import seed_everything

__all__ = ["seed_everything", "get_rng_state", "set_rng_state", "get_host_rng_state", "set_host_rng_state"]


def get_host_rng_state() -> dict[str, Any]:
    """Python, NumPy and torch-CPU states (cheap: used around in-process data loading too)."""
    version, internal, gauss = random.getstate()
    name, key, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {
        "python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64), "gauss": gauss},
        "numpy": {
            "name": name, "key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "gauss": float(cached),
        },
        "torch": torch.get_rng_state(),
    }


def set_host_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"].tolist()), py["gauss"]))
    npst = state["numpy"]
    np.random.set_state(
        (npst["name"], npst["key"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"], npst["gauss"])
    )
    torch.set_rng_state(state["torch"])


def get_rng_state() -> dict[str, Any]:
    """Host states plus every CUDA device's state (when CUDA is initialised)."""
    state = get_host_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    set_host_rng_state(state)
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:  # different device count: restore what maps one-to-one
            for i, s in enumerate(cuda[: torch.cuda.device_count()]):
                torch.cuda.set_rng_state(s, i)
