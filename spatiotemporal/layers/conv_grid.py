"""Depthwise convolutions applied on the token grid, in 2D (per slice along axis 0) or 3D."""

from __future__ import annotations

import torch
from torch import nn

from .grid import Grid, map_to_tokens, slices_to_tokens, tokens_to_map, tokens_to_slices


def conv_nd(ndim: int):
    """``nn.Conv2d`` or ``nn.Conv3d``."""
    if ndim not in (2, 3):
        raise ValueError(f"ndim must be 2 or 3, got {ndim}")
    return nn.Conv2d if ndim == 2 else nn.Conv3d


def batchnorm_nd(ndim: int):
    return nn.BatchNorm2d if ndim == 2 else nn.BatchNorm3d


def apply_on_grid(fn: nn.Module, x: torch.Tensor, grid: Grid, ndim: int) -> torch.Tensor:
    """Run a spatial module on grid tokens ``(B, N, C)``; 2D runs per slice along axis 0.

    ``fn`` maps ``(B', C, *spatial) -> (B', C', *spatial')``; returns tokens ``(B, N', C')``.
    """
    if ndim == 2:
        return slices_to_tokens(fn(tokens_to_slices(x, grid)), grid[0])
    return map_to_tokens(fn(tokens_to_map(x, grid)))


def reduced_grid(grid: Grid, ratio: int, ndim: int) -> Grid:
    """Grid after a convolution with kernel = stride = ``ratio`` (2D: axes 1, 2 only)."""
    g0, g1, g2 = grid
    if ndim == 2:
        return (g0, g1 // ratio, g2 // ratio)
    return (g0 // ratio, g1 // ratio, g2 // ratio)
