"""The encoder every model shares: one :class:`EncoderConfig`, a stack of blocks over a token grid."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch
from timm.layers import calculate_drop_path_rates
from torch import nn

from ..layers import Block, Grid, GridLayout
from ..layers.recompute import check_policy, run_recomputed
from ..layers.registry import FFNS, MIXERS
from ..utils.errors import UserInputError


@dataclass(kw_only=True)
class EncoderConfig:
    """The transformer trunk of a model. A single-stage model config declares which of its fields hold it
    (``ENCODER_FIELDS``); :func:`encoder_of` reads it, :func:`with_encoder` writes it back."""

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


@dataclass(frozen=True)
class PerWidth:
    """An ``ENCODER_FIELDS`` entry: the config field ``name`` holds ``value * dim`` (UNETR's ``mlp_dim`` holds
    ``mlp_ratio``)."""

    name: str


@dataclass(frozen=True)
class Fixed:
    """An ``ENCODER_FIELDS`` entry: a value the family does not let its config change (XCiT's uniform stochastic
    depth)."""

    value: Any


#: The encoder fields that shape the weights: what inflation carries from a 2D model into its video / volume copy
#: (the others, stochastic depth and recomputation, are training choices of the target).
ARCHITECTURE_FIELDS = ("dim", "depth", "num_heads", "mixer", "mixer_kwargs", "ffn", "ffn_kwargs", "mlp_ratio",
                       "qkv_bias", "norm_eps", "init_values")


#: ``ENCODER_FIELDS`` of the configs that use the ViT's names (ViT, TimeSformer, VideoMAE).
VIT_ENCODER_FIELDS = {"dim": "embed_dim", **{f: f for f in (
    "depth", "num_heads", "mixer", "mixer_kwargs", "ffn", "ffn_kwargs", "mlp_ratio", "qkv_bias", "norm_eps",
    "init_values", "drop_path_rate", "drop_path_mode", "recompute")}}


def encoder_of(cfg) -> EncoderConfig:
    """The :class:`EncoderConfig` a model config declares through its class-level ``ENCODER_FIELDS``
    (``{encoder field: config field name | PerWidth | Fixed}``; unnamed fields keep EncoderConfig's defaults).

    The mixer and the FFN then take their own options from the model config (their ``from_model_config`` hook:
    the MLP-Mixer's ``token_ratio``, ConvMixer's ``kernel_size`` and ``act``, XCiT's ``eta``) where
    ``mixer_kwargs`` / ``ffn_kwargs`` do not set them."""
    declared = type(cfg).ENCODER_FIELDS
    values = {k: src.value if isinstance(src, Fixed) else getattr(cfg, src)
              for k, src in declared.items() if not isinstance(src, PerWidth)}
    values = {k: dict(v) if isinstance(v, dict) else v for k, v in values.items()}
    for k, src in declared.items():
        if isinstance(src, PerWidth):
            values[k] = getattr(cfg, src.name) / values["dim"]
    enc = EncoderConfig(**values)
    if enc.mixer in MIXERS:  # an unknown name fails in BlockStack, with the registry's message
        enc = MIXERS[enc.mixer].from_model_config(enc, cfg, "mixer")
    if enc.ffn in FFNS:
        enc = FFNS[enc.ffn].from_model_config(enc, cfg, "ffn")
    return enc


def with_encoder(cls_or_cfg, enc: EncoderConfig, *, only: tuple[str, ...] = ARCHITECTURE_FIELDS):
    """``enc``'s fields in ``only`` written into a model config through its ``ENCODER_FIELDS``: the config values
    (a dict) for a config class, a new config for a config instance. A value the config cannot hold (no field for
    it, or a ``Fixed`` one that differs) is a :class:`UserInputError` naming it."""
    cfg_cls = cls_or_cfg if isinstance(cls_or_cfg, type) else type(cls_or_cfg)
    declared = cfg_cls.ENCODER_FIELDS
    defaults = EncoderConfig(dim=enc.dim, depth=enc.depth, num_heads=enc.num_heads)
    out = {}
    for name in only:
        value, src = getattr(enc, name), declared.get(name)
        if isinstance(src, str):
            out[src] = dict(value) if isinstance(value, dict) else value
        elif isinstance(src, PerWidth):
            out[src.name] = int(round(value * enc.dim))
        elif value != (src.value if isinstance(src, Fixed) else getattr(defaults, name)):
            raise UserInputError(f"{cfg_cls.__name__} cannot hold the encoder's {name}={value!r} "
                                 f"(it has {'no such field' if src is None else f'{name}={src.value!r} fixed'})")
    return out if isinstance(cls_or_cfg, type) else replace(cls_or_cfg, **out)


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
