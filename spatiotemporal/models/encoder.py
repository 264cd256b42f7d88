"""The encoder every model shares: one :class:`EncoderConfig`, a stack of blocks over a token grid."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from timm.layers import calculate_drop_path_rates
from torch import nn

from ..layers import Block, Grid, GridLayout
from ..layers.recompute import check_policy, run_recomputed


@dataclass
class EncoderConfig:
    """The transformer trunk of a model; each model config maps its own field names onto it (``encoder()``)."""

    dim: int
    depth: int
    num_heads: int
    mixer: str = "joint"
    mixer_kwargs: dict = field(default_factory=dict)
    ffn: str = "mlp"
    ffn_kwargs: dict = field(default_factory=dict)
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    norm_eps: float = 1e-6
    init_values: float | None = None  # LayerScale
    drop_path_rate: float = 0.0
    drop_path_mode: str = "linear"  # linear (0 -> rate over the blocks) | uniform
    recompute: str = "none"  # activation checkpointing of each block: none | pointwise | projections | full


def drop_path_rates(rate: float, depth: int, mode: str = "linear") -> list[float]:
    """Per-block stochastic-depth rates: ``linear`` (timm's ``calculate_drop_path_rates``) or ``uniform``."""
    if mode == "uniform":
        return [rate] * depth
    if mode != "linear":
        raise ValueError(f"drop_path_mode must be 'linear' or 'uniform', got {mode!r}")
    return calculate_drop_path_rates(rate, depth)


class BlockStack(nn.Module):
    """``depth`` blocks on the grid ``layout``; in training, each block's activations are kept or recomputed
    as ``cfg.recompute`` says (:mod:`spatiotemporal.layers.recompute`; ``self.recompute`` may be changed).

    ``forward(x (B, L, C), grid, num_prefix, collect=()) -> x, [outputs of the blocks in collect]``.
    """

    def __init__(self, cfg: EncoderConfig, layout: GridLayout):
        super().__init__()
        self.layout = layout
        dpr = drop_path_rates(cfg.drop_path_rate, cfg.depth, cfg.drop_path_mode)
        self.blocks = nn.ModuleList(
            Block(cfg.dim, num_heads=cfg.num_heads, layout=layout, mixer=cfg.mixer, mixer_kwargs=cfg.mixer_kwargs,
                  ffn=cfg.ffn, ffn_kwargs=cfg.ffn_kwargs, mlp_ratio=cfg.mlp_ratio, qkv_bias=cfg.qkv_bias,
                  norm_eps=cfg.norm_eps, init_values=cfg.init_values, drop_path=dpr[i])
            for i in range(cfg.depth)
        )
        self.recompute = check_policy(cfg.recompute)

    def forward(self, x: torch.Tensor, grid: Grid, num_prefix: int = 0, collect=()) -> tuple[torch.Tensor, list]:
        outs: dict[int, torch.Tensor] = {}
        for i, blk in enumerate(self.blocks):
            x = run_recomputed(self.recompute if self.training else "none", blk, x, grid, num_prefix)
            if i in collect:
                outs[i] = x
        return x, [outs[i] for i in collect]
