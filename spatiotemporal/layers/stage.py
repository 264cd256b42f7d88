"""Grid-changing pieces for multiscale encoders: a stage takes ``(tokens, grid)`` and returns ``(tokens, grid')``.

Protocol: a *grid module* has ``forward(x (B, P+N, C), grid, num_prefix) -> (x' (B, P+N', C'), grid')``; prefix
tokens (a class token) are never pooled or convolved. A :class:`Stage` is an optional grid module (a downsampling
embedding) followed by blocks; a block either keeps the grid (``forward -> x``, like :class:`~.block.Block`) or
declares ``changes_grid = True`` and returns ``(x, grid)`` (e.g. a pooling-attention block that strides its
queries). :class:`MultiStageEncoder` runs stages in order and returns every stage's ``(tokens, grid)``, for
decoders and per-stage ERFs. Every piece works on images ``(1, H, W)``, videos ``(T, H, W)`` and volumes, odd and
non-cubic grids included.

MViT's pieces: :class:`PooledSkip` is the skip path of a block whose queries are strided (optional channel
projection, then max-pooling with kernel ``s + 1``; prefix tokens projected, never pooled), and doubles as the
downsampling of a stage built from grid-keeping blocks; :func:`strided_grid` is the grid after a strided
convolution or pooling; :func:`stage_layout` gives each stage's mixers their own grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from monai.networks.layers import Pool
from torch import nn

from .conv_grid import apply_on_grid, conv_nd
from .grid import Grid, GridLayout, split_prefix, tokens_to_map
from .recompute import check_policy, run_recomputed


def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


def per_axis(value: int | Sequence[int], n: int, name: str) -> tuple[int, ...]:
    """``value`` as ``n`` positive ints (a kernel or a stride; an int is repeated); a wrong length or a value
    below 1 is an error naming ``name``."""
    out = tuple(int(v) for v in value) if isinstance(value, Sequence) else (int(value),) * n
    if len(out) != n:
        raise ValueError(f"{name} {out} must have {n} values")
    if min(out) < 1:
        raise ValueError(f"{name} {out} must be positive sizes (>= 1)")
    return out


def strided_grid(grid: Grid, kernel: Sequence[int], stride: Sequence[int]) -> Grid:
    """The grid after a convolution or pooling with per-axis ``kernel`` and ``stride`` and padding ``kernel // 2``
    (three values each, one per grid axis)."""
    return tuple(conv_out(g, k, s, k // 2) for g, k, s in zip(grid, kernel, stride))


class OverlapPatchEmbed(nn.Module):
    """SegFormer's overlapping patch embedding on grid tokens: ``Conv(k, s, padding k // 2)`` then LayerNorm.

    ``ndim=2`` convolves each slice along ``axis`` (time or depth keeps its length), ``ndim=3`` the whole grid
    (then ``stride`` may differ per axis, e.g. ``(1, 2, 2)``). ``(B, P+N, C_in), grid -> (B, P+N', C_out), grid'``;
    prefix tokens are projected by a linear layer to ``C_out`` (they have no grid position); a model without
    prefix tokens passes ``prefix_tokens=False`` and has no such layer (SegFormer's parameter count).
    """

    def __init__(self, in_dim: int, out_dim: int, kernel: int = 7, stride: int | Sequence[int] = 4, ndim: int = 2,
                 axis: int = 0, norm_eps: float = 1e-6, prefix_tokens: bool = True):
        super().__init__()
        self.ndim, self.axis, self.kernel = ndim, axis, kernel
        self.stride = tuple(stride) if isinstance(stride, Sequence) else (stride,) * ndim
        if len(self.stride) != ndim:
            raise ValueError(f"stride {self.stride} must have {ndim} values for ndim={ndim}")
        self.proj = conv_nd(ndim)(in_dim, out_dim, kernel, stride=self.stride, padding=kernel // 2)
        self.norm = nn.LayerNorm(out_dim, eps=norm_eps)
        self.prefix_proj = (nn.Linear(in_dim, out_dim) if in_dim != out_dim else nn.Identity()) if prefix_tokens \
            else None

    def out_grid(self, grid: Grid) -> Grid:
        """The grid after the convolution."""
        p = self.kernel // 2
        if self.ndim == 3:
            return tuple(conv_out(g, self.kernel, s, p) for g, s in zip(grid, self.stride))
        strides = iter(self.stride)
        return tuple(g if i == self.axis else conv_out(g, self.kernel, next(strides), p) for i, g in enumerate(grid))

    def forward(self, x: torch.Tensor, grid: Grid, num_prefix: int = 0) -> tuple[torch.Tensor, Grid]:
        if num_prefix and self.prefix_proj is None:
            raise ValueError("this patch embedding was built with prefix_tokens=False but got prefix tokens")
        prefix, tokens = split_prefix(x, num_prefix)
        tokens = self.norm(apply_on_grid(self.proj, tokens, grid, self.ndim, self.axis))
        if self.prefix_proj is None:
            return tokens, self.out_grid(grid)
        return torch.cat([self.prefix_proj(prefix), tokens], dim=1), self.out_grid(grid)


class PooledSkip(nn.Module):
    """MViT's skip path of a block whose queries are strided: ``Linear(in_dim, out_dim)`` when the widths differ,
    then max-pooling of the grid tokens with kernel ``s + 1`` (1 where ``s = 1``), stride ``s`` and padding
    ``kernel // 2`` per grid axis; prefix tokens are projected, never pooled.

    ``stride``: one value per grid axis (or an int). ``(B, P+N, C_in), grid -> (B, P+N', C_out), grid'``. It is
    also the downsampling of a stage built from grid-keeping blocks (any mixer in an MViT stage).
    """

    def __init__(self, in_dim: int, out_dim: int, stride: int | Sequence[int] = 1):
        super().__init__()
        self.stride = per_axis(stride, 3, "stride")
        self.kernel = tuple(s + 1 if s > 1 else s for s in self.stride)
        self.proj = nn.Linear(in_dim, out_dim) if in_dim != out_dim else None
        strided = any(s > 1 for s in self.stride)
        self.pool = Pool[Pool.MAX, 3](self.kernel, self.stride, tuple(k // 2 for k in self.kernel)) if strided \
            else None

    def out_grid(self, grid: Grid) -> Grid:
        return strided_grid(grid, self.kernel, self.stride)

    def forward(self, x: torch.Tensor, grid: Grid, num_prefix: int = 0) -> tuple[torch.Tensor, Grid]:
        if self.proj is not None:
            x = self.proj(x)
        if self.pool is None:
            return x, tuple(grid)
        prefix, tokens = split_prefix(x, num_prefix)
        b, _, c = tokens.shape
        pooled = self.pool(tokens.transpose(1, 2).reshape(b, c, *grid))  # contiguous channels-first, as the convs
        return torch.cat([prefix, pooled.flatten(2).transpose(1, 2)], dim=1), self.out_grid(grid)


def pixels_to_tokens(x: torch.Tensor) -> tuple[torch.Tensor, Grid]:
    """An input ``(B, C, H, W)`` or ``(B, C, S0, S1, S2)`` as grid tokens ``(B, N, C)`` on its pixel/voxel grid, so
    the first stage's embedding is a grid module like the others."""
    if x.ndim == 4:
        x = x.unsqueeze(2)
    if x.ndim != 5:
        raise ValueError(f"expected (B, C, H, W) or (B, C, S0, S1, S2), got shape {tuple(x.shape)}")
    return x.flatten(2).transpose(1, 2), tuple(x.shape[2:])


class Stage(nn.Module):
    """``downsample`` (a grid module, or None) then ``blocks``, then an optional ``norm``.

    ``forward(x (B, P+N, C), grid, num_prefix, recompute="none") -> (x (B, P+N', C'), grid')``. ``recompute``
    (:mod:`.recompute`) applies to the downsampling and to each block, one checkpointed unit each; the stage's
    ``norm`` always keeps what it saves.
    """

    def __init__(self, blocks: Sequence[nn.Module], downsample: nn.Module | None = None,
                 norm: nn.Module | None = None):
        super().__init__()
        self.downsample = downsample
        self.blocks = nn.ModuleList(blocks)
        self.norm = norm if norm is not None else nn.Identity()

    def forward(self, x: torch.Tensor, grid: Grid, num_prefix: int = 0,
                recompute: str = "none") -> tuple[torch.Tensor, Grid]:
        if self.downsample is not None:
            x, grid = run_recomputed(recompute, self.downsample, x, grid, num_prefix)
        for blk in self.blocks:
            if getattr(blk, "changes_grid", False):
                x, grid = run_recomputed(recompute, blk, x, grid, num_prefix)
            else:
                x = run_recomputed(recompute, blk, x, grid, num_prefix)
        return self.norm(x), tuple(grid)


@dataclass
class StageOutput:
    """One stage's output: tokens ``(B, P+N, C)`` and their grid."""

    tokens: torch.Tensor
    grid: Grid
    num_prefix: int

    def feature_map(self) -> torch.Tensor:
        """``(B, C, G0, G1, G2)`` of the grid tokens."""
        return tokens_to_map(self.tokens[:, self.num_prefix:], self.grid)


class MultiStageEncoder(nn.Module):
    """Stages in order; ``forward(x, grid, num_prefix) -> [StageOutput per stage]``. In training, every stage's
    downsampling and blocks are kept or recomputed as ``recompute`` says (:mod:`.recompute`; ``self.recompute``
    may be changed); a stem outside the stages is not recomputed."""

    def __init__(self, stages: Sequence[Stage], recompute: str = "none"):
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.recompute = check_policy(recompute)

    def forward(self, x: torch.Tensor, grid: Grid, num_prefix: int = 0) -> list[StageOutput]:
        outs = []
        policy = self.recompute if self.training else "none"
        for stage in self.stages:
            x, grid = stage(x, grid, num_prefix, policy)
            outs.append(StageOutput(x, grid, num_prefix))
        return outs


def stage_layout(axes: tuple[str, str, str], grid: Grid) -> GridLayout:
    """The layout a stage's mixers get: the model's axes with the stage's own (static) grid size."""
    return GridLayout(axes, tuple(grid))
