"""The one device resolver: ``--device auto|cpu|cuda|cuda:N`` -> ``torch.device``."""

from __future__ import annotations

import torch

from .errors import UserInputError

__all__ = ["resolve_device"]


def resolve_device(spec: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> ``cuda:LOCAL_RANK`` if CUDA is available else ``cpu``; ``cuda`` -> ``cuda:LOCAL_RANK``.

    Raises ``ValueError`` naming the spec for anything else, or for CUDA on a machine without it.
    """
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cuda":
        spec = f"cuda:{local_rank}"
    try:
        device = torch.device(spec)
    except RuntimeError as e:
        raise UserInputError(f"device '{spec}': expected auto, cpu, cuda or cuda:N") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserInputError(f"device '{spec}' requested but CUDA is not available")
    if device.type not in ("cpu", "cuda"):
        raise UserInputError(f"device '{spec}': expected auto, cpu, cuda or cuda:N")
    return device
