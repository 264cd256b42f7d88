"""Efficient spatial-reduction attention (PVT / SegFormer), 2D per slice or 3D."""

from __future__ import annotations

import torch
from torch import nn

from .conv_grid import apply_on_grid, conv_nd, default_ndim, slice_axis
from .grid import Grid, GridLayout, check_grid, split_prefix
from .mixer import TokenMixer
from .registry import register_mixer
from .sdpa import attend


@register_mixer("sra")
class SRAttention(TokenMixer):
    """Queries from every token; keys and values from the grid reduced by a strided convolution.

    ``sr_ratio`` R: kernel = stride = R on each reduced axis, then LayerNorm (SegFormer). ``ndim=2``
    reduces within each slice along the time/depth axis (``N/R^2`` keys), ``ndim=3`` the whole grid
    (``N/R^3``); default: 3 on volumes, 2 otherwise. With ``sr_ratio=1`` there is no convolution and it is
    plain attention. Prefix tokens are kept unreduced among the keys.
    ``forward(x (B, P+N, C), grid, num_prefix) -> update (B, P+N, C)``.
    """

    def __init__(self, dim: int, *, num_heads: int, layout: GridLayout, qkv_bias: bool = True,
                 norm_layer=nn.LayerNorm, sr_ratio: int = 2, ndim: int | None = None):
        super().__init__()
        if sr_ratio < 1:
            raise ValueError(f"mixer 'sra': sr_ratio must be >= 1, got {sr_ratio}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.sr_ratio = sr_ratio
        self.ndim = default_ndim(layout, ndim)
        self.axis = slice_axis(layout)
        self.norm = norm_layer(dim)
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        if sr_ratio > 1:
            self.sr = conv_nd(self.ndim)(dim, dim, kernel_size=sr_ratio, stride=sr_ratio)
            self.sr_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, grid: Grid, num_prefix: int = 0) -> torch.Tensor:
        check_grid(x, grid, num_prefix)
        x = self.norm(x)
        b, n, c = x.shape
        if self.sr_ratio > 1:
            reduced_axes = [g for i, g in enumerate(grid) if self.ndim == 3 or i != self.axis]
            if min(reduced_axes) < self.sr_ratio:
                raise ValueError(f"mixer 'sra': the token grid {tuple(grid)} is smaller than sr_ratio "
                                 f"{self.sr_ratio} on a reduced axis; use a larger input or smaller sr_ratios")
            prefix, tokens = split_prefix(x, num_prefix)
            reduced = apply_on_grid(self.sr, tokens, grid, self.ndim, self.axis)
            kv_in = torch.cat([prefix, self.sr_norm(reduced)], dim=1)
        else:
            kv_in = x
        h, d = self.num_heads, self.head_dim
        q = self.q(x).reshape(b, n, h, d).transpose(1, 2)
        k, v = self.kv(kv_in).reshape(b, kv_in.shape[1], 2, h, d).permute(2, 0, 3, 1, 4).unbind(0)
        out = attend(q, k, v, scale=d**-0.5)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))
