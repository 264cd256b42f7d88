"""Pooling heads: class token, global average pooling (GAP) and multi-head attention pooling (MAP)."""

from __future__ import annotations

from functools import partial

import torch
from timm.layers import AttentionPoolLatent
from torch import nn

POOLS = ("token", "avg", "map")


class Pool(nn.Module):
    """``(B, P+N, C) -> (B, C)``: the first prefix token, the mean of the grid tokens, or MAP.

    MAP is timm's ``AttentionPoolLatent`` (a learned latent query attending over the grid tokens,
    Scaling-ViT's head), reused rather than rewritten.
    """

    def __init__(self, kind: str, dim: int, num_heads: int, mlp_ratio: float = 4.0, norm_eps: float = 1e-6):
        super().__init__()
        if kind not in POOLS:
            raise ValueError(f"global_pool must be one of {POOLS}, got {kind!r}")
        self.kind = kind
        if kind == "map":
            self.attn_pool = AttentionPoolLatent(
                dim, num_heads=num_heads, mlp_ratio=mlp_ratio, norm_layer=partial(nn.LayerNorm, eps=norm_eps)
            )

    def forward(self, x: torch.Tensor, num_prefix: int) -> torch.Tensor:
        if self.kind == "token":
            if num_prefix == 0:
                raise ValueError("global_pool='token' needs a class token")
            return x[:, 0]
        if self.kind == "avg":
            return x[:, num_prefix:].mean(1)
        return self.attn_pool(x[:, num_prefix:])
