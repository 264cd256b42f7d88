"""Token-grid helpers shared by every mixer.

Tokens are ``(B, P + G0*G1*G2, C)``: ``P`` prefix tokens (e.g. a class token) followed by the
grid tokens in row-major order over the grid ``(G0, G1, G2)``. Images use ``(1, H, W)``, videos
``(T, H, W)`` and volumes ``(D, H, W)`` or MONAI's ``(H, W, D)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange

Grid = tuple[int, int, int]

#: Axis names of a grid layout: time, depth, height, width, and "1" for the padding axis of 2D grids.
AXIS_NAMES = ("t", "d", "h", "w", "1")


@dataclass(frozen=True)
class GridLayout:
    """What a model tells its mixers about its token grid.

    ``axes`` names the three grid axes in token order: ``("1", "h", "w")`` for images, ``("t", "h", "w")`` for
    videos, ``("h", "w", "d")`` for MONAI volumes. ``size`` is the static grid at the model's native input
    (a model may still run on other grids; mixers that need a fixed grid check it).
    """

    axes: tuple[str, str, str]
    size: Grid

    def __post_init__(self) -> None:
        if len(self.axes) != 3 or any(a not in AXIS_NAMES for a in self.axes):
            raise ValueError(f"grid layout axes must be three of {AXIS_NAMES}, got {self.axes}")
        if len(self.size) != 3 or any(int(s) < 1 for s in self.size):
            raise ValueError(f"grid layout size must be three sizes >= 1, got {self.size}")
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))

    @property
    def slice_axis(self) -> int | None:
        """Index of the time or depth axis (the one divided attention runs along), or None for images."""
        for i, a in enumerate(self.axes):
            if a in ("t", "d"):
                return i
        return None

    @property
    def is_volume(self) -> bool:
        return "d" in self.axes

    def resolve_axis(self, axis: int | None, mixer: str) -> int:
        """``axis`` checked against this layout, or the layout's time/depth axis when ``axis`` is None."""
        if axis is None:
            axis = self.slice_axis
            if axis is None:
                raise ValueError(f"mixer {mixer!r} needs a time or depth axis, but the grid {self.axes} has none; "
                                 f"pass axis=0, 1 or 2, or use a mixer such as 'joint'")
        if axis not in (0, 1, 2):
            raise ValueError(f"mixer {mixer!r}: axis must be 0, 1 or 2 of the grid {self.axes}, got {axis!r}")
        return axis


def image_layout(gh: int, gw: int) -> GridLayout:
    return GridLayout(("1", "h", "w"), (1, gh, gw))


def video_layout(t: int, gh: int, gw: int) -> GridLayout:
    return GridLayout(("t", "h", "w"), (t, gh, gw))


def volume_layout(g0: int, g1: int, g2: int) -> GridLayout:
    """MONAI's (H, W, D) order: depth last."""
    return GridLayout(("h", "w", "d"), (g0, g1, g2))


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


def mean_to_prefix(update: torch.Tensor, num_prefix: int) -> torch.Tensor:
    """``(B, N, C) -> (B, P+N, C)``: prefix tokens (a class token) receive the mean of the grid tokens' update (the
    rule of mixers that only act on the grid: token MLPs, convolutions)."""
    if not num_prefix:
        return update
    return torch.cat([update.mean(1, keepdim=True).expand(-1, num_prefix, -1), update], dim=1)


def tokens_to_map(x: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Grid tokens ``(B, N, C) -> (B, C, G0, G1, G2)``."""
    g0, g1, g2 = grid
    return rearrange(x, "b (g0 g1 g2) c -> b c g0 g1 g2", g0=g0, g1=g1, g2=g2)


def map_to_tokens(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, G0, G1, G2) -> (B, N, C)``."""
    return rearrange(x, "b c g0 g1 g2 -> b (g0 g1 g2) c")


_AXES = ("g0", "g1", "g2")


def tokens_to_slices(x: torch.Tensor, grid: Grid, axis: int = 0) -> torch.Tensor:
    """Grid tokens ``(B, N, C) -> (B*G_axis, C, Ga, Gb)``: one 2D map per slice along ``axis``."""
    rest = " ".join(a for i, a in enumerate(_AXES) if i != axis)
    return rearrange(x, f"b (g0 g1 g2) c -> (b {_AXES[axis]}) c {rest}", **dict(zip(_AXES, grid)))


def slices_to_tokens(x: torch.Tensor, grid: Grid, axis: int = 0) -> torch.Tensor:
    """``(B*G_axis, C, Ga', Gb') -> (B, N', C)``, the inverse of :func:`tokens_to_slices` (sizes may change)."""
    rest = " ".join(a for i, a in enumerate(_AXES) if i != axis)
    out = rearrange(x, f"(b {_AXES[axis]}) c {rest} -> b {_AXES[0]} {_AXES[1]} {_AXES[2]} c",
                    **{_AXES[axis]: grid[axis]})
    return out.flatten(1, 3)


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
