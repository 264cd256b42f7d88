"""MViTv2 pooling attention on any token grid: Q, K and V pooled by depthwise convolutions, residual pooling and
decomposed relative positions, with the softmax in SDPA."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from torch import nn

from .conv_grid import conv_nd, slice_axis
from .grid import Grid, GridLayout, check_grid
from .mixer import TokenMixer
from .registry import register_mixer
from .sdpa import attend
from .stage import per_axis, strided_grid

#: ``q (B, h, G0, G1, G2, d) x R_a (q_a, k_a, d) -> (B, h, G0, G1, G2, k_a)`` for grid axis a.
_REL_EINSUM = ("bnxyzc,xkc->bnxyzk", "bnxyzc,ykc->bnxyzk", "bnxyzc,zkc->bnxyzk")


def rel_pos_table(table: torch.Tensor, q_len: int, k_len: int) -> torch.Tensor:
    """One axis's relative-position embeddings ``(q_len, k_len, d)`` from its table ``(L, d)``, MViTv2's rule:
    query and key positions are scaled to the finer of the two grids, and a table whose length is not
    ``2 * max(q_len, k_len) - 1`` is linearly interpolated to it."""
    n = 2 * max(q_len, k_len) - 1
    if table.shape[0] != n:
        table = F.interpolate(table.t()[None], size=n, mode="linear")[0].t()
    q_ratio, k_ratio = max(k_len / q_len, 1.0), max(q_len / k_len, 1.0)
    q_pos = torch.arange(q_len, device=table.device)[:, None] * q_ratio
    k_pos = (torch.arange(k_len, device=table.device)[None, :] + (1.0 - k_len)) * k_ratio
    return table[(q_pos - k_pos).long()]


def rel_pos_length(size: int, stride_q: int, stride_kv: int) -> int:
    """Table length MViTv2 (and torchvision, timm) give an axis of ``size`` tokens: ``2 * max(q, kv) - 1`` with
    ``q = size // stride_q`` and ``kv = size // stride_kv``."""
    return 2 * max(size // stride_q, size // stride_kv) - 1


@register_mixer("pooling")
class PoolingAttention(TokenMixer):
    """MViTv2 pooling attention (facebookresearch/mvit ``MultiScaleAttention``, torchvision ``MultiscaleAttention``).

    ``qkv`` projects to ``dim_out``; Q, K and V are then each pooled by a depthwise convolution shared across
    heads (``kernel_*``, ``stride_*``, padding ``kernel // 2``, no bias) and LayerNorm'd (``pool_norm_eps``;
    default: the model's norm). Prefix tokens (a class token) are not pooled; they are normalised with the pooled
    tokens. A branch whose kernel and stride are all 1 is not pooled. Then
    ``softmax(q k^T / sqrt(d) + rel) v``, where ``rel`` is MViTv2's decomposed relative position: one table per
    named grid axis (``rel_pos_t``, ``rel_pos_h``, ``rel_pos_w``; ``rel_pos_d`` on volumes; none for the ``"1"``
    axis of images), between grid tokens only. Residual pooling adds the pooled q to the grid rows
    (``residual_pool_prefix``: to the prefix rows too, as timm does).

    Kernels and strides are given per grid axis: ``(t, h, w)`` on videos, ``(1, h, w)`` on images, ``(h, w, d)``
    on MONAI volumes (an int: the same on every pooled axis). The pooling convolutions are 3D on videos and
    volumes (MViTv2's video models) and 2D on images; ``ndim=2`` pools each frame / slice on its own (kernel and
    stride 1 along that axis).

    The relative-position bias ``rel[i, j] = sum_a q_i . R_a[i_a, j_a]`` is bilinear, so it enters SDPA as extra
    columns of q (``q . R_a``) against one-hot columns of k, padded to a multiple of 8: the ``(Nq, Nk)`` bias is
    never materialised. Measured on CPU at MViTv2-S's first block (25089 queries, 393 keys): a train step of the
    attention took 0.71 s this way against 2.60 s with the bias as SDPA's ``attn_mask`` and 4.89 s in matmuls.

    ``forward(x (B, P+N, C), grid, P) -> update (B, P+N, C)`` when the mixer keeps the grid and the width
    (``stride_q`` 1, ``dim_out = dim``), so any block can use it; grid-changing blocks
    (:class:`~.multiscale_block.MultiScaleBlock`) call :meth:`pool_attention`.
    """

    def __init__(self, dim: int, *, num_heads: int, layout: GridLayout, qkv_bias: bool = True,
                 norm_layer=nn.LayerNorm, dim_out: int | None = None, kernel_q: int | Sequence[int] = 3,
                 kernel_kv: int | Sequence[int] = 3, stride_q: int | Sequence[int] = 1,
                 stride_kv: int | Sequence[int] = 1, residual_pool: bool = True, residual_pool_prefix: bool = False,
                 rel_pos: bool = True, pool_norm_eps: float | None = None, ndim: int | None = None):
        super().__init__()
        dim_out = dim_out or dim
        if dim_out % num_heads:
            raise ValueError(f"mixer 'pooling': dim_out {dim_out} is not divisible by num_heads {num_heads}")
        self.num_heads, self.head_dim, self.dim_out = num_heads, dim_out // num_heads, dim_out
        self.scale = self.head_dim**-0.5
        self.ndim = (2 if layout.slice_axis is None else 3) if ndim is None else ndim
        if self.ndim not in (2, 3):
            raise ValueError(f"mixer 'pooling': ndim must be 2 or 3, got {ndim!r}")
        self.axis = slice_axis(layout)
        self.kernel_q, self.kernel_kv = self._per_axis(kernel_q, "kernel_q"), self._per_axis(kernel_kv, "kernel_kv")
        self.stride_q, self.stride_kv = self._per_axis(stride_q, "stride_q"), self._per_axis(stride_kv, "stride_kv")
        self.residual_pool, self.residual_pool_prefix = residual_pool, residual_pool_prefix
        self.norm = norm_layer(dim)
        self.qkv = nn.Linear(dim, 3 * dim_out, bias=qkv_bias)
        self.proj = nn.Linear(dim_out, dim_out)
        pool_norm = norm_layer if pool_norm_eps is None else partial(nn.LayerNorm, eps=pool_norm_eps)
        self.pool_q, self.norm_q = self._pool_branch(self.kernel_q, self.stride_q, pool_norm)
        self.pool_k, self.norm_k = self._pool_branch(self.kernel_kv, self.stride_kv, pool_norm)
        self.pool_v, self.norm_v = self._pool_branch(self.kernel_kv, self.stride_kv, pool_norm)
        self.rel_axes: list[tuple[int, str]] = []
        if rel_pos:
            for i, name in enumerate(layout.axes):
                if name == "1":
                    continue
                n = rel_pos_length(layout.size[i], self.stride_q[i], self.stride_kv[i])
                self.register_parameter(f"rel_pos_{name}", nn.Parameter(trunc_normal_(torch.zeros(n, self.head_dim),
                                                                                      std=0.02)))
                self.rel_axes.append((i, f"rel_pos_{name}"))
        self.keeps_grid = dim_out == dim and self.out_grid(layout.size) == layout.size

    def _per_axis(self, value: int | Sequence[int], name: str) -> tuple[int, int, int]:
        """Three values, one per grid axis; an int is 1 along the slice axis of 2D pooling."""
        out = per_axis(value, 3, f"mixer 'pooling': {name}")
        if self.ndim == 2 and isinstance(value, int):
            out = tuple(1 if i == self.axis else v for i, v in enumerate(out))
        return out

    def _pool_branch(self, kernel: tuple, stride: tuple, norm_layer) -> tuple[nn.Module | None, nn.Module | None]:
        if all(k == 1 for k in kernel) and all(s == 1 for s in stride):
            return None, None
        if self.ndim == 2:
            if kernel[self.axis] != 1 or stride[self.axis] != 1:
                raise ValueError(f"mixer 'pooling' with ndim=2 pools each slice along grid axis {self.axis}: its "
                                 f"kernel and stride there must be 1, got kernel {kernel}, stride {stride}")
            kernel = tuple(k for i, k in enumerate(kernel) if i != self.axis)
            stride = tuple(s for i, s in enumerate(stride) if i != self.axis)
        conv = conv_nd(self.ndim)(self.head_dim, self.head_dim, kernel, stride=stride,
                                  padding=tuple(k // 2 for k in kernel), groups=self.head_dim, bias=False)
        return conv, norm_layer(self.head_dim)

    def out_grid(self, grid: Grid) -> Grid:
        """The grid of the queries (and of the output)."""
        return strided_grid(grid, self.kernel_q, self.stride_q) if self.pool_q is not None else tuple(grid)

    def no_weight_decay(self) -> set[str]:
        """The relative-position tables (as timm)."""
        return {name for _, name in self.rel_axes}

    def _conv(self, conv: nn.Module, t: torch.Tensor, grid: Grid) -> torch.Tensor:
        """Depthwise pooling of grid tokens ``(B, h, N, d) -> (B, h, N', d)``: 3D on the grid, or 2D per slice along
        ``self.axis``. The map is made contiguous channels-first in one copy, as torchvision does: the CPU depthwise
        kernels were ~1.8x slower on a channels-last view of the tokens."""
        b, h, _, d = t.shape
        x = t.transpose(2, 3).reshape(b * h, d, *grid)
        if self.ndim == 2:
            a = self.axis
            x = x.movedim(2 + a, 1).reshape(-1, d, *(g for i, g in enumerate(grid) if i != a))
        y = conv(x)
        if self.ndim == 2:
            y = y.reshape(b * h, grid[self.axis], *y.shape[1:]).movedim(1, 2 + self.axis)
        return y.reshape(b, h, d, -1).transpose(2, 3)

    def _pool(self, t: torch.Tensor, branch: str, grid: Grid, num_prefix: int) -> tuple[torch.Tensor, Grid]:
        """``(B, h, P+N, d) -> (B, h, P+N', d)`` and the pooled grid (``branch`` q, k or v); prefix rows skip the
        convolution."""
        conv, norm = getattr(self, f"pool_{branch}"), getattr(self, f"norm_{branch}")
        if conv is None:
            return t, tuple(grid)
        tokens = self._conv(conv, t[:, :, num_prefix:], grid)
        kernel, stride = (self.kernel_q, self.stride_q) if branch == "q" else (self.kernel_kv, self.stride_kv)
        return norm(torch.cat([t[:, :, :num_prefix], tokens], dim=2)), strided_grid(grid, kernel, stride)

    def _attend_rel(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, q_grid: Grid, k_grid: Grid,
                    num_prefix: int) -> torch.Tensor:
        """Softmax attention with the decomposed relative positions as extra q / k columns (see the class)."""
        b, h, _, d = q.shape
        qg = q[:, :, num_prefix:].reshape(b, h, *q_grid, d)
        q_cols, k_cols = [], []
        for axis, name in self.rel_axes:
            table = rel_pos_table(getattr(self, name), q_grid[axis], k_grid[axis]).to(q.dtype)
            q_cols.append(torch.einsum(_REL_EINSUM[axis], qg, table).reshape(b, h, -1, k_grid[axis]))
            pos = torch.arange(k_grid[axis], device=q.device).view([-1 if i == axis else 1 for i in range(3)])
            k_cols.append(F.one_hot(pos.expand(*k_grid).reshape(-1), k_grid[axis]))
        pad = -(d + sum(c.shape[-1] for c in k_cols)) % 8  # SDPA kernels like widths that are multiples of 8
        q_rel = F.pad(torch.cat(q_cols, -1), (0, pad, num_prefix, 0))
        k_rel = F.pad(torch.cat(k_cols, -1).to(k.dtype), (0, pad, num_prefix, 0)).expand(b, h, -1, -1)
        qa, ka = torch.cat([q * self.scale, q_rel], -1), torch.cat([k, k_rel], -1)
        return attend(qa, ka, F.pad(v, (0, qa.shape[-1] - d)), scale=1.0)[..., :d]

    def pool_attention(self, x: torch.Tensor, grid: Grid, num_prefix: int = 0) -> tuple[torch.Tensor, Grid]:
        """Normalised tokens ``x (B, P+N, C)`` -> ``(B, P+N', dim_out)`` and the queries' grid ``grid'``."""
        check_grid(x, grid, num_prefix)
        b, n, _ = x.shape
        h, d = self.num_heads, self.head_dim
        q, k, v = self.qkv(x).reshape(b, n, 3, h, d).permute(2, 0, 3, 1, 4).unbind(0)
        q, q_grid = self._pool(q, "q", grid, num_prefix)
        k, k_grid = self._pool(k, "k", grid, num_prefix)
        v, _ = self._pool(v, "v", grid, num_prefix)
        if self.rel_axes:
            out = self._attend_rel(q, k, v, q_grid, k_grid, num_prefix)
        else:
            out = attend(q, k, v, scale=self.scale)
        if self.residual_pool:
            out = out + (q if self.residual_pool_prefix else F.pad(q[:, :, num_prefix:], (0, 0, num_prefix, 0)))
        return self.proj(out.transpose(1, 2).reshape(b, -1, self.dim_out)), q_grid

    def forward(self, x: torch.Tensor, grid: Grid, num_prefix: int = 0) -> torch.Tensor:
        if not self.keeps_grid:
            raise ValueError("mixer 'pooling' with strided queries or dim_out != dim changes the grid or the width: "
                             "use it in a grid-changing block (layers.MultiScaleBlock, as the mvit models do)")
        return self.pool_attention(self.norm(x), grid, num_prefix)[0]
