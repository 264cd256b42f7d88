"""A stack of blocks over a token grid: the shared trunk of every model."""

from __future__ import annotations

import torch
from torch import nn

from ..layers import Block, Grid


def drop_path_rates(rate: float, depth: int, mode: str = "linear") -> list[float]:
    """Per-block stochastic-depth rates: ``linear`` (0 -> rate) or ``uniform``."""
    if mode == "uniform":
        return [rate] * depth
    if mode != "linear":
        raise ValueError(f"drop_path_mode must be 'linear' or 'uniform', got {mode!r}")
    return [x.item() for x in torch.linspace(0, rate, depth)]


class BlockStack(nn.Module):
    """``depth`` blocks; ``forward(x (B, L, C), grid, num_prefix, collect=()) -> x, [outputs of blocks in collect]``."""

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        mixer: str = "joint",
        ffn: str = "mlp",
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        norm_eps: float = 1e-6,
        init_values: float | None = None,
        drop_path_rate: float = 0.0,
        drop_path_mode: str = "linear",
        mixer_kwargs: dict | None = None,
        ffn_kwargs: dict | None = None,
    ):
        super().__init__()
        dpr = drop_path_rates(drop_path_rate, depth, drop_path_mode)
        self.blocks = nn.ModuleList(
            Block(
                dim, num_heads, mixer, ffn, mlp_ratio, qkv_bias, norm_eps, init_values, dpr[i], mixer_kwargs, ffn_kwargs
            )
            for i in range(depth)
        )
        self.grad_checkpointing = False

    def forward(self, x: torch.Tensor, grid: Grid, num_prefix: int = 0, collect=()) -> tuple[torch.Tensor, list]:
        outs: dict[int, torch.Tensor] = {}
        for i, blk in enumerate(self.blocks):
            if self.grad_checkpointing and self.training and torch.is_grad_enabled():
                x = torch.utils.checkpoint.checkpoint(blk, x, grid, num_prefix, use_reentrant=False)
            else:
                x = blk(x, grid, num_prefix)
            if i in collect:
                outs[i] = x
        return x, [outs[i] for i in collect]
