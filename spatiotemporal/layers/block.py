"""The transformer block: a pre-norm token mixer plus a pre-norm FFN, with LayerScale and DropPath."""

from __future__ import annotations

from functools import partial

import torch
from timm.layers import DropPath, LayerScale
from torch import nn

from .grid import Grid, GridLayout
from .registry import build_ffn, build_mixer


class Block(nn.Module):
    """``x = x + DropPath(LS1(mixer(x))); x = x + DropPath(LS2(ffn(x)))``.

    Mixer and FFN own their pre-norms (``mixer.norm``, ``ffn.norm``), so a mixer with several
    sub-layers (divided attention, XCA + LPI) normalises each one itself. Every argument but ``dim``
    is keyword-only. ``forward(x (B, P+N, C), grid, num_prefix) -> (B, P+N, C)``.
    """

    def __init__(
        self,
        dim: int,
        *,
        num_heads: int,
        layout: GridLayout,
        mixer: str = "joint",
        mixer_kwargs: dict | None = None,
        ffn: str = "mlp",
        ffn_kwargs: dict | None = None,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        norm_eps: float = 1e-6,
        init_values: float | None = None,
        drop_path: float = 0.0,
    ):
        super().__init__()
        norm_layer = partial(nn.LayerNorm, eps=norm_eps)
        self.mixer = build_mixer(mixer, dim, num_heads=num_heads, layout=layout, qkv_bias=qkv_bias,
                                 norm_layer=norm_layer, kwargs=mixer_kwargs)
        self.ls1 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.drop_path1 = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.ffn = build_ffn(ffn, dim, hidden_dim=int(dim * mlp_ratio), layout=layout, norm_layer=norm_layer,
                             kwargs=ffn_kwargs)
        self.ls2 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.drop_path2 = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, grid: Grid, num_prefix: int = 0) -> torch.Tensor:
        x = x + self.drop_path1(self.ls1(self.mixer(x, grid, num_prefix)))
        return x + self.drop_path2(self.ls2(self.ffn(x, grid, num_prefix)))
