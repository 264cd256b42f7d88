"""Token-grid helpers shared by every mixer.

Tokens are ``(B, P + G0*G1*G2, C)``: ``P`` prefix tokens (e.g. a class token) followed by the
grid tokens in row-major order over the grid ``(G0, G1, G2)``. Images use ``(1, H, W)``, videos
``(T, H, W)`` and volumes ``(D, H, W)`` or MONAI's ``(H, W, D)``.
"""

from __future__ import annotations

import torch
from einops import rearrange

Grid = tuple[int, int, int]


def check_grid(x: torch.Tensor, grid: Grid, num_prefix: int) -> None:
    """Raise a clear error when ``x (B, L, C)`` does not hold ``num_prefix + prod(grid)`` tokens."""
    if len(grid) != 3:
        raise ValueError(f"grid must have three sizes (G0, G1, G2), got {tuple(grid)}")
    n = grid[0] * grid[1] * grid[2]
    if x.shape[1] != num_prefix + n:
        raise ValueError(
            f"token count {x.shape[1]} does not match {num_prefix} prefix + grid {tuple(grid)} = {num_prefix + n}"
        )


def split_prefix(x: torch.Tensor, num_prefix: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, P+N, C) -> (B, P, C), (B, N, C)``."""
    return x[:, :num_prefix], x[:, num_prefix:]


def tokens_to_map(x: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Grid tokens ``(B, N, C) -> (B, C, G0, G1, G2)``."""
    g0, g1, g2 = grid
    return rearrange(x, "b (g0 g1 g2) c -> b c g0 g1 g2", g0=g0, g1=g1, g2=g2)


def map_to_tokens(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, G0, G1, G2) -> (B, N, C)``."""
    return rearrange(x, "b c g0 g1 g2 -> b (g0 g1 g2) c")


def tokens_to_slices(x: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Grid tokens ``(B, N, C) -> (B*G0, C, G1, G2)``: one 2D map per slice along axis 0."""
    g0, g1, g2 = grid
    return rearrange(x, "b (g0 g1 g2) c -> (b g0) c g1 g2", g0=g0, g1=g1, g2=g2)


def slices_to_tokens(x: torch.Tensor, g0: int) -> torch.Tensor:
    """``(B*G0, C, G1, G2) -> (B, G0*G1*G2, C)``."""
    return rearrange(x, "(b g0) c g1 g2 -> b (g0 g1 g2) c", g0=g0)


_AXES = ("g0", "g1", "g2")


def group_along(x: torch.Tensor, grid: Grid, axis: int) -> torch.Tensor:
    """Grid tokens ``(B, N, C) -> (B * N/G_axis, G_axis, C)``: sequences along one grid axis."""
    rest = " ".join(a for i, a in enumerate(_AXES) if i != axis)
    sizes = dict(zip(_AXES, grid))
    return rearrange(x, f"b (g0 g1 g2) c -> (b {rest}) {_AXES[axis]} c", **sizes)


def ungroup_along(x: torch.Tensor, grid: Grid, axis: int) -> torch.Tensor:
    """Inverse of :func:`group_along`."""
    rest = " ".join(a for i, a in enumerate(_AXES) if i != axis)
    sizes = dict(zip(_AXES, grid))
    return rearrange(x, f"(b {rest}) {_AXES[axis]} c -> b (g0 g1 g2) c", **sizes)


def group_across(x: torch.Tensor, grid: Grid, axis: int) -> torch.Tensor:
    """Grid tokens ``(B, N, C) -> (B*G_axis, N/G_axis, C)``: one sequence per slice orthogonal to ``axis``."""
    rest = " ".join(a for i, a in enumerate(_AXES) if i != axis)
    sizes = dict(zip(_AXES, grid))
    return rearrange(x, f"b (g0 g1 g2) c -> (b {_AXES[axis]}) ({rest}) c", **sizes)


def ungroup_across(x: torch.Tensor, grid: Grid, axis: int) -> torch.Tensor:
    """Inverse of :func:`group_across`."""
    rest = " ".join(a for i, a in enumerate(_AXES) if i != axis)
    sizes = dict(zip(_AXES, grid))
    return rearrange(x, f"(b {_AXES[axis]}) ({rest}) c -> b (g0 g1 g2) c", **sizes)
