"""Efficient spatial-reduction attention (PVT / SegFormer), 2D or 3D."""

from __future__ import annotations

import torch
from torch import nn

from .conv_grid import apply_on_grid, conv_nd
from .grid import Grid, check_grid, split_prefix
from .sdpa import attend


class SRAttention(nn.Module):
    """Queries from every token; keys and values from the grid reduced by a strided convolution.

    ``sr_ratio`` R: kernel = stride = R on each reduced axis, then LayerNorm (SegFormer). ``ndim=2``
    reduces within each slice along axis 0 (``N/R^2`` keys), ``ndim=3`` the whole grid (``N/R^3``).
    With ``sr_ratio=1`` there is no convolution and it is plain attention. Prefix tokens are kept
    unreduced among the keys. ``forward(x (B, P+N, C), grid, num_prefix) -> update (B, P+N, C)``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        qkv_bias: bool = True,
        norm_layer=nn.LayerNorm,
        sr_ratio: int = 2,
        ndim: int = 2,
        **_unused,
    ):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.sr_ratio = sr_ratio
        self.ndim = ndim
        self.norm = norm_layer(dim)
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        if sr_ratio > 1:
            self.sr = conv_nd(ndim)(dim, dim, kernel_size=sr_ratio, stride=sr_ratio)
            self.sr_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, grid: Grid, num_prefix: int = 0) -> torch.Tensor:
        check_grid(x, grid, num_prefix)
        x = self.norm(x)
        b, n, c = x.shape
        if self.sr_ratio > 1:
            prefix, tokens = split_prefix(x, num_prefix)
            kv_in = torch.cat([prefix, self.sr_norm(apply_on_grid(self.sr, tokens, grid, self.ndim))], dim=1)
        else:
            kv_in = x
        h, d = self.num_heads, self.head_dim
        q = self.q(x).reshape(b, n, h, d).transpose(1, 2)
        k, v = self.kv(kv_in).reshape(b, kv_in.shape[1], 2, h, d).permute(2, 0, 3, 1, 4).unbind(0)
        out = attend(q, k, v, scale=d**-0.5)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))
