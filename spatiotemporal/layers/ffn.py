"""Feed-forward layers: the plain MLP and SegFormer's Mix-FFN (2D per slice or 3D)."""

from __future__ import annotations

import torch
from torch import nn

from .conv_grid import apply_on_grid, conv_nd, default_ndim, slice_axis
from .grid import Grid, GridLayout, split_prefix
from .mixer import TokenMixer
from .registry import register_ffn


@register_ffn("mlp")
class Mlp(TokenMixer):
    """Pre-norm MLP ``fc1 -> GELU -> fc2`` (times ``gamma`` with ``layer_scale``);
    ``forward(x (B, L, C), grid, num_prefix) -> (B, L, out_dim)``.

    ``out_dim`` defaults to ``dim``; MViT v1 widens the channels here (the block then projects its skip path).
    """

    def __init__(self, dim: int, *, hidden_dim: int, layout: GridLayout | None = None, norm_layer=nn.LayerNorm,
                 drop: float = 0.0, out_dim: int | None = None, layer_scale: float | None = None):
        super().__init__()
        self.norm = norm_layer(dim)
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.drop = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_dim, out_dim or dim)
        if layer_scale is not None:  # XCiT's gamma2 (with the block's LayerScale off)
            self.gamma = nn.Parameter(torch.full((out_dim or dim,), float(layer_scale)))

    def forward(self, x: torch.Tensor, grid: Grid | None = None, num_prefix: int = 0) -> torch.Tensor:
        y = self.drop(self.fc2(self.drop(self.act(self.fc1(self.norm(x))))))
        return y * self.gamma if hasattr(self, "gamma") else y


@register_ffn("mixffn")
class MixFFN(TokenMixer):
    """Mix-FFN: ``fc1 -> depthwise conv on the expanded hidden grid -> GELU -> fc2``.

    ``ndim=2`` uses k x k convolutions per slice along the time/depth axis, ``ndim=3`` k x k x k on the grid;
    default: 3 on volumes, 2 otherwise. Prefix tokens skip the convolution.
    ``forward(x (B, P+N, C), grid, num_prefix) -> (B, P+N, C)``.
    """

    def __init__(self, dim: int, *, hidden_dim: int, layout: GridLayout, norm_layer=nn.LayerNorm,
                 ndim: int | None = None, kernel_size: int = 3, drop: float = 0.0):
        super().__init__()
        self.ndim = default_ndim(layout, ndim)
        self.axis = slice_axis(layout)
        self.norm = norm_layer(dim)
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.dwconv = conv_nd(self.ndim)(hidden_dim, hidden_dim, kernel_size, padding=kernel_size // 2,
                                         groups=hidden_dim)
        self.act = nn.GELU()
        self.drop = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor, grid: Grid, num_prefix: int = 0) -> torch.Tensor:
        prefix, tokens = split_prefix(self.fc1(self.norm(x)), num_prefix)
        tokens = apply_on_grid(self.dwconv, tokens, grid, self.ndim, self.axis)
        h = torch.cat([prefix, tokens], dim=1)
        return self.drop(self.fc2(self.drop(self.act(h))))
