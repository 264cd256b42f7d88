"""ConvMixer for images (Trockman & Kolter, "Patches Are All You Need?"), ``(B, C, H, W) -> (B, num_classes)``.

A patch stem ``Conv(k=p, s=p) -> act -> BatchNorm``, then blocks ``x = x + BN(act(DWConv(x)))`` (the mixer
``convmixer``) and ``x = BN(act(Conv1x1(x)))`` (the non-residual feed-forward ``convmixer_pointwise``), global
average pooling and a linear head; timm's ``ConvMixer``. No norm at the end, no position embedding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from ..layers import PatchEmbed2d, TokenBatchNorm, image_layout, init_weights_, patch_grid
from ..layers.convmixer import ACTIVATIONS
from ._registry import register_arch, register_model
from .base import InputSpec, PooledImageClassifier
from .encoder import BlockStack, encoder_of
from .inflation.stem import Stem2d, sub_state
from .validate import check_config


@dataclass
class ConvMixerConfig:
    """Every architectural choice of :class:`ConvMixer`; the defaults are timm's ``convmixer_1536_20``.

    ``act`` (``gelu`` | ``relu``) is used by the stem, the mixer and the pointwise layer (``convmixer_768_32`` uses
    ReLU). Another ``mixer`` or ``ffn`` replaces the ConvMixer halves (``num_heads`` is for attention mixers).
    """

    img_size: int = 224
    patch_size: int = 7
    in_chans: int = 3
    num_classes: int = 1000
    dim: int = 1536
    depth: int = 20
    kernel_size: int = 9
    act: str = "gelu"
    num_heads: int = 8
    drop_path_rate: float = 0.0
    mixer: str = "convmixer"
    mixer_kwargs: dict = field(default_factory=dict)
    ffn: str = "convmixer_pointwise"
    ffn_kwargs: dict = field(default_factory=dict)
    recompute: str = "none"  # activation checkpointing per block: none | pointwise | projections | full

    def __post_init__(self) -> None:
        check_config(self, heads=(("dim", "num_heads"),), multiples=(("img_size", "patch_size"),))

    #: The encoder's fields in this config (``encoder_of`` / ``with_encoder``): ``{EncoderConfig name: own name}``;
    #: ``kernel_size`` and ``act`` go to the ConvMixer mixer and pointwise FFN (their ``model_options``).
    ENCODER_FIELDS: ClassVar[dict] = {"dim": "dim", "depth": "depth", "num_heads": "num_heads", "mixer": "mixer",
                                      "mixer_kwargs": "mixer_kwargs", "ffn": "ffn", "ffn_kwargs": "ffn_kwargs",
                                      "drop_path_rate": "drop_path_rate", "recompute": "recompute"}


@register_arch
class ConvMixer(PooledImageClassifier):
    """``(B, C, H, W) -> logits (B, num_classes)``; any input size divisible by the patch size."""

    arch = "convmixer"
    modality = "image"
    config_cls = ConvMixerConfig

    def __init__(self, cfg: ConvMixerConfig):
        super().__init__()
        if cfg.act not in ACTIVATIONS:
            raise ValueError(f"ConvMixer act must be one of {sorted(ACTIVATIONS)}, got {cfg.act!r}")
        self.cfg = cfg
        self.patch_embed = PatchEmbed2d(cfg.patch_size, cfg.in_chans, cfg.dim)
        self.stem_act = ACTIVATIONS[cfg.act]()
        self.stem_bn = TokenBatchNorm(cfg.dim)
        self.grid_size = patch_grid(cfg.img_size, cfg.patch_size)
        self.encoder = BlockStack(encoder_of(cfg), image_layout(*self.grid_size))
        self.head = nn.Linear(cfg.dim, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()
        init_weights_(self)

    def input_spec(self) -> InputSpec:
        return InputSpec(self.cfg.in_chans, (self.cfg.img_size, self.cfg.img_size))

    def inflation_source(self) -> Stem2d:
        """Inflation hook: the stem convolution as the patch kernel (its activation and BatchNorm are not carried),
        no positions, GAP with no norm, the head."""
        c, sd = self.cfg, self.state_dict()
        return Stem2d(
            arch=self.arch, encoder=encoder_of(c), encoder_state=sub_state(sd, "encoder."),
            img_size=c.img_size, in_chans=c.in_chans, num_classes=c.num_classes, patch_size=c.patch_size,
            patch_weight=sd["patch_embed.proj.weight"], patch_bias=sd["patch_embed.proj.bias"], pool="avg",
            norm_position="none", head=sub_state(sd, "head."), dropped=("the stem's activation and BatchNorm",))

    def forward_tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int], int]:
        """``(B, C, H, W) -> tokens (B, N, D), grid (1, H', W'), 0`` (the last block's output)."""
        tokens, grid = self.patch_embed(x)
        tokens, _ = self.encoder(self.stem_bn(self.stem_act(tokens)), grid, 0)
        return tokens, grid, 0


@register_model(ConvMixer)
def convmixer_1536_20():
    """ConvMixer-1536/20 (kernel 9, patch 7)"""
    return dict(dim=1536, depth=20, kernel_size=9, patch_size=7)


@register_model(ConvMixer)
def convmixer_768_32():
    """ConvMixer-768/32 (kernel 7, patch 7, ReLU)"""
    return dict(dim=768, depth=32, kernel_size=7, patch_size=7, act="relu")


@register_model(ConvMixer)
def convmixer_1024_20_ks9_p14():
    """ConvMixer-1024/20 (kernel 9, patch 14)"""
    return dict(dim=1024, depth=20, kernel_size=9, patch_size=14)


@register_model(ConvMixer)
def convmixer_tiny_builtin():
    """CPU-sized ConvMixer for the built-in image set (32 px, patch 4, kernel 5)"""
    return dict(img_size=32, patch_size=4, dim=128, depth=4, kernel_size=5, num_heads=4, num_classes=10)
