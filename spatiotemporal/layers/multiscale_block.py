"""The MViT block: pooling attention whose strided queries change the grid, an MLP, and a pooled skip path."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from timm.layers import DropPath
from torch import nn

from .grid import Grid, GridLayout
from .registry import build_ffn, build_mixer
from .stage import PooledSkip


class MultiScaleBlock(nn.Module):
    """MViT block (MViTv2 / torchvision ``MultiscaleBlock``, pytorchvideo ``MultiScaleBlock``), a grid-changing
    block (``changes_grid = True``)::

        xn = norm(x)                                   # the mixer's pre-norm
        x = skip(x or proj(xn)) + DropPath(attn(xn))   # skip: max-pooled like the queries (stride_q)
        x = x or proj(norm2(x)) + DropPath(mlp(x))

    The width goes from ``dim`` to ``dim_out`` in the attention when ``expand_attn`` (MViTv2: the skip path is
    the projected *normalised* input, pooled) or else in the MLP (MViT v1: the skip is the projected normalised
    MLP input). ``mixer_kwargs`` are the :class:`~.pooling_attention.PoolingAttention` options (kernels,
    ``stride_kv``, relative positions...). ``layout`` is the block's input grid.

    ``forward(x (B, P+N, dim), grid, num_prefix) -> (x (B, P+N', dim_out), grid')``.
    """

    changes_grid = True

    def __init__(self, dim: int, dim_out: int, *, num_heads: int, layout: GridLayout,
                 stride_q: int | Sequence[int] = 1, expand_attn: bool = True, mixer_kwargs: dict | None = None,
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, norm_eps: float = 1e-6, drop_path: float = 0.0):
        super().__init__()
        norm_layer = partial(nn.LayerNorm, eps=norm_eps)
        attn_dim = dim_out if expand_attn else dim
        self.mixer = build_mixer("pooling", dim, num_heads=num_heads, layout=layout, qkv_bias=qkv_bias,
                                 norm_layer=norm_layer,
                                 kwargs={**(mixer_kwargs or {}), "dim_out": attn_dim, "stride_q": stride_q})
        self.skip = PooledSkip(dim, attn_dim, self.mixer.stride_q if self.mixer.pool_q is not None else 1)
        out_layout = GridLayout(layout.axes, self.mixer.out_grid(layout.size))
        self.ffn = build_ffn("mlp", attn_dim, hidden_dim=int(attn_dim * mlp_ratio), layout=out_layout,
                             norm_layer=norm_layer, kwargs={"out_dim": dim_out} if attn_dim != dim_out else None)
        self.ffn_proj = nn.Linear(attn_dim, dim_out) if attn_dim != dim_out else None
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, grid: Grid, num_prefix: int = 0) -> tuple[torch.Tensor, Grid]:
        xn = self.mixer.norm(x)
        update, new_grid = self.mixer.pool_attention(xn, grid, num_prefix)
        x = self.skip(xn if self.skip.proj is not None else x, grid, num_prefix)[0] + self.drop_path1(update)
        skip = x if self.ffn_proj is None else self.ffn_proj(self.ffn.norm(x))
        return skip + self.drop_path2(self.ffn(x, new_grid, num_prefix)), new_grid
