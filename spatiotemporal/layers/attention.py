"""Multi-head self-attention, and the mixers built directly on it: joint and space-only."""

from __future__ import annotations

import torch
from torch import nn

from .attention_matrix import slice_matrix
from .grid import Grid, GridLayout, check_grid, group_across, split_prefix, ungroup_across
from .mixer import TokenMixer
from .registry import register_mixer
from .sdpa import attend


class MultiHeadAttention(nn.Module):
    """Plain multi-head self-attention on a sequence, ``(B, N, C) -> (B, N, C)``.

    One fused ``qkv`` projection laid out ``(3, heads, head_dim)`` like timm, MONAI and the
    official TimeSformer, so their weights load unchanged.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, proj_bias: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        out = attend(q, k, v, scale=self.scale)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


@register_mixer("joint")
class JointAttention(TokenMixer):
    """Joint space-time attention: one softmax over all tokens (prefix included).

    ``forward(x (B, P+N, C), grid, num_prefix) -> update (B, P+N, C)``; pre-norm included.
    """

    inflates_from = ("space_only",)

    def __init__(self, dim: int, *, num_heads: int, layout: GridLayout, qkv_bias: bool = True,
                 norm_layer=nn.LayerNorm):
        super().__init__()
        self.norm = norm_layer(dim)
        self.attn = MultiHeadAttention(dim, num_heads, qkv_bias)

    def forward(self, x: torch.Tensor, grid: Grid, num_prefix: int = 0) -> torch.Tensor:
        check_grid(x, grid, num_prefix)
        return self.attn(self.norm(x))

    def attention_matrix(self, weights: list[torch.Tensor], grid: Grid, num_prefix: int) -> list[torch.Tensor]:
        """One softmax over all tokens: ``(B, heads, P+N, P+N)`` heads averaged."""
        return [weights[0].mean(1)]


def slice_attention(
    attn: MultiHeadAttention, x: torch.Tensor, grid: Grid, num_prefix: int, axis: int
) -> torch.Tensor:
    """Attention within each slice orthogonal to ``axis`` (per frame for a time axis).

    Prefix tokens are copied into every slice, attend with it, and their outputs are averaged
    over the slices, as TimeSformer does for its class token. ``x (B, P+N, C) -> (B, P+N, C)``.
    """
    prefix, tokens = split_prefix(x, num_prefix)
    b, c, g = x.shape[0], x.shape[2], grid[axis]
    seq = group_across(tokens, grid, axis)  # (B*G, N/G, C)
    if num_prefix:
        pre = prefix.unsqueeze(1).expand(b, g, num_prefix, c).reshape(b * g, num_prefix, c)
        seq = torch.cat([pre, seq], dim=1)
    out = attn(seq)
    out_tokens = ungroup_across(out[:, num_prefix:], grid, axis)
    if not num_prefix:
        return out_tokens
    out_prefix = out[:, :num_prefix].reshape(b, g, num_prefix, c).mean(1)
    return torch.cat([out_prefix, out_tokens], dim=1)


@register_mixer("space_only")
class SpaceOnlyAttention(TokenMixer):
    """Space-only attention: each slice orthogonal to ``axis`` (a frame, or a volume slice) attends within itself.

    ``axis`` defaults to the layout's time or depth axis (images: the whole grid is one slice). The class token
    takes part in every slice and its outputs are averaged (one sequence per clip, shared class token); the
    official TimeSformer's *framewise* space-only model is the ``framewise=True`` option of
    :class:`~spatiotemporal.models.TimeSformer` instead. ``forward(x (B, P+N, C), grid, num_prefix) -> (B, P+N, C)``.
    """

    inflates_from = ("joint",)

    def __init__(self, dim: int, *, num_heads: int, layout: GridLayout, qkv_bias: bool = True,
                 norm_layer=nn.LayerNorm, axis: int | None = None):
        super().__init__()
        self.axis = (layout.slice_axis or 0) if axis is None else layout.resolve_axis(axis, "space_only")
        self.norm = norm_layer(dim)
        self.attn = MultiHeadAttention(dim, num_heads, qkv_bias)

    def forward(self, x: torch.Tensor, grid: Grid, num_prefix: int = 0) -> torch.Tensor:
        check_grid(x, grid, num_prefix)
        return slice_attention(self.attn, self.norm(x), grid, num_prefix, self.axis)

    def attention_matrix(self, weights: list[torch.Tensor], grid: Grid, num_prefix: int) -> list[torch.Tensor]:
        """One softmax per slice ``(B*G, heads, P+S, P+S)``, written as one ``(B, P+N, P+N)`` matrix."""
        return [slice_matrix(weights[0], grid, self.axis, num_prefix)]
