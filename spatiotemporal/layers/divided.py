"""Divided space-time attention (TimeSformer): attention along one axis, then within the other two."""

from __future__ import annotations

import torch
from torch import nn

from .attention import MultiHeadAttention, slice_attention
from .attention_matrix import along_axis_matrix, slice_matrix
from .grid import Grid, GridLayout, check_grid, group_along, split_prefix, ungroup_along
from .mixer import TokenMixer
from .registry import register_mixer


@register_mixer("divided")
class DividedAttention(TokenMixer):
    """Temporal attention then spatial attention, in TimeSformer's exact order.

    1. Temporal: grid tokens (prefix excluded) attend along ``axis`` (default: the layout's time axis for
       videos, depth axis for volumes) through ``temporal_norm`` / ``temporal_attn``, then ``temporal_fc``.
    2. Spatial: the prefix tokens are copied into every slice and attend with the temporally
       updated tokens of that slice (``norm`` / ``attn``); prefix outputs are averaged over slices.

    Returns the update ``(B, P+N, C)`` to add to ``x (B, P+N, C)``. ``temporal_fc`` starts at zero
    (``init_weights``), so a freshly built or inflated block equals its spatial attention.
    """

    inflates_from = ("joint", "space_only")

    def __init__(self, dim: int, *, num_heads: int, layout: GridLayout, qkv_bias: bool = True,
                 norm_layer=nn.LayerNorm, axis: int | None = None):
        super().__init__()
        self.axis = layout.resolve_axis(axis, "divided")
        self.temporal_norm = norm_layer(dim)
        self.temporal_attn = MultiHeadAttention(dim, num_heads, qkv_bias)
        self.temporal_fc = nn.Linear(dim, dim)
        self.norm = norm_layer(dim)
        self.attn = MultiHeadAttention(dim, num_heads, qkv_bias)
        self.init_weights()

    def init_weights(self) -> None:
        """The official rule (TimeSformer #29): every block's ``temporal_fc`` starts at zero."""
        nn.init.zeros_(self.temporal_fc.weight)
        nn.init.zeros_(self.temporal_fc.bias)

    def inflate_state_dict(self, sd: dict[str, torch.Tensor], prefix: str) -> None:
        """Temporal attention starts as a copy of the 2D spatial attention (``temporal_fc`` keeps its zeros)."""
        for src, dst in (("norm.", "temporal_norm."), ("attn.", "temporal_attn.")):
            for k in [k for k in sd if k.startswith(prefix + src)]:
                sd.setdefault(prefix + dst + k[len(prefix + src):], sd[k].clone())

    def forward(self, x: torch.Tensor, grid: Grid, num_prefix: int = 0) -> torch.Tensor:
        check_grid(x, grid, num_prefix)
        prefix, tokens = split_prefix(x, num_prefix)
        seq = group_along(self.temporal_norm(tokens), grid, self.axis)
        dt = self.temporal_fc(ungroup_along(self.temporal_attn(seq), grid, self.axis))
        xs = torch.cat([prefix, tokens + dt], dim=1)
        ds = slice_attention(self.attn, self.norm(xs), grid, num_prefix, self.axis)
        if num_prefix:
            dt = torch.cat([dt.new_zeros(dt.shape[0], num_prefix, dt.shape[2]), dt], dim=1)
        return dt + ds

    def attention_matrix(self, weights: list[torch.Tensor], grid: Grid, num_prefix: int) -> list[torch.Tensor]:
        """Two softmax steps, temporal first: ``[(B, P+N, P+N)]`` of the attention along ``axis`` (prefix tokens
        untouched), then of the attention within each slice."""
        temporal, spatial = weights
        return [along_axis_matrix(temporal, grid, self.axis, num_prefix),
                slice_matrix(spatial, grid, self.axis, num_prefix)]
