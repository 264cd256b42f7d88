"""Perturbations of a model input along its time (video) or depth (volume) axis, for ``spatio probe``.

Each function takes a tensor ``x`` and the axis ``dim`` to perturb (video ``(B, C, T, H, W)`` or multi-view
``(B, V, C, T, H, W)``: ``dim=-3``; volume ``(B, C, H, W, D)`` in MONAI order: ``dim=-1``) and returns a tensor of
the same shape. Random ones draw from a ``torch.Generator`` so a seed gives the same perturbation.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..utils.errors import UserInputError


def _permutation(n: int, generator: torch.Generator | None) -> torch.Tensor:
    """A random permutation of ``range(n)`` that is not the identity (when ``n > 1``)."""
    perm = torch.randperm(n, generator=generator)
    while n > 1 and torch.equal(perm, torch.arange(n)):
        perm = torch.randperm(n, generator=generator)
    return perm


def original(x: torch.Tensor, dim: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """The input as given."""
    return x


def reversed_order(x: torch.Tensor, dim: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Frames (slices) in reverse order."""
    return x.flip(dim)


def shuffled(x: torch.Tensor, dim: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Frames (slices) in a random order (one permutation per call, never the identity)."""
    perm = _permutation(x.shape[dim], generator).to(x.device)
    return x.index_select(dim, perm)


def static(x: torch.Tensor, dim: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """The middle frame (slice, index ``n // 2``) repeated along the axis: no motion, no order."""
    n = x.shape[dim]
    return x.narrow(dim, n // 2, 1).expand_as(x).contiguous()


def dropped(x: torch.Tensor, dim: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Every other frame dropped (frames 0, 2, 4, ...), each kept frame shown twice to keep the length."""
    n = x.shape[dim]
    idx = (torch.arange(n) // 2 * 2).clamp(max=n - 1).to(x.device)
    return x.index_select(dim, idx)


def shuffled_trend_kept(x: torch.Tensor, dim: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Frames shuffled, then each frame's mean (per channel, over the other axes) set back to the mean of the
    original frame at that position: the content loses its order, the global brightness trend over time stays.
    A model that reads only a global brightness ramp keeps its accuracy; one that follows the content loses it.
    The channel axis is the one before ``dim`` for video (``C, T``); the mean is over the axes after ``dim``."""
    out = shuffled(x, dim, generator)
    d = dim % x.ndim
    spatial = tuple(range(d + 1, x.ndim))
    return out + (x.mean(spatial, keepdim=True) - out.mean(spatial, keepdim=True))


VIDEO_PERTURBATIONS: dict[str, Callable] = {
    "original": original, "reversed": reversed_order, "shuffled": shuffled, "static": static,
    "dropped": dropped, "shuffled_trend_kept": shuffled_trend_kept,
}
VOLUME_PERTURBATIONS: dict[str, Callable] = {
    "original": original, "shuffled": shuffled, "flipped": reversed_order, "static": static,
}


def check_perturbations(names: list[str] | None, valid: dict[str, Callable], what: str) -> list[str]:
    """The requested perturbation names (``None``: all of ``valid``), ``original`` first; a one-line error naming
    the valid ones for ``what`` (e.g. ``"video"``) on an unknown name."""
    names = list(valid) if not names else list(dict.fromkeys(names))
    bad = [n for n in names if n not in valid]
    if bad:
        raise UserInputError(f"--perturb {bad[0]}: not a {what} perturbation (expected one of {', '.join(valid)})")
    return ["original"] + [n for n in names if n != "original"]


def perturbation_generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed`` (the same seed gives the same shuffles)."""
    return torch.Generator().manual_seed(seed)
