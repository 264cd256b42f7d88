"""MLP-Mixer for images (Tolstikhin et al. 2021), ``(B, C, H, W) -> (B, num_classes)``, timm's layout.

Patch embedding, blocks of token mixing (any registered mixer; by default the full-grid token MLP ``mlp_mixer``)
and a channel MLP, LayerNorm, global average pooling, a linear head. No position embedding, no class token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from torch import nn

from ..layers import PatchEmbed2d, image_layout, init_weights_, patch_grid
from ._registry import register_arch, register_model
from .base import InputSpec, PooledImageClassifier
from .encoder import BlockStack, Fixed, encoder_of
from .inflation.stem import Stem2d, sub_state
from .validate import check_config


@dataclass
class MlpMixerConfig:
    """Every architectural choice of :class:`MlpMixer`; the defaults are timm's ``mixer_b16_224``.

    ``token_ratio`` sets the token-MLP hidden size (``token_ratio * embed_dim``, D_S of the paper) of the token-MLP
    mixers; ``num_heads`` is used only when ``mixer`` is an attention mixer.
    """

    img_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    num_classes: int = 1000
    embed_dim: int = 768
    depth: int = 12
    token_ratio: float = 0.5
    mlp_ratio: float = 4.0
    num_heads: int = 8
    norm_eps: float = 1e-6
    drop_path_rate: float = 0.0
    mixer: str = "mlp_mixer"
    mixer_kwargs: dict = field(default_factory=dict)
    ffn: str = "mlp"
    ffn_kwargs: dict = field(default_factory=dict)
    recompute: str = "none"  # activation checkpointing per block: none | pointwise | projections | full

    def __post_init__(self) -> None:
        check_config(self, heads=(("embed_dim", "num_heads"),), multiples=(("img_size", "patch_size"),))

    #: The encoder's fields in this config (``encoder_of`` / ``with_encoder``): ``{EncoderConfig name: own name}``;
    #: ``token_ratio`` goes to the token-MLP mixers (their ``model_options``).
    ENCODER_FIELDS: ClassVar[dict] = {"dim": "embed_dim", "depth": "depth", "num_heads": "num_heads", "mixer": "mixer",
                                      "mixer_kwargs": "mixer_kwargs", "ffn": "ffn", "ffn_kwargs": "ffn_kwargs",
                                      "mlp_ratio": "mlp_ratio", "norm_eps": "norm_eps",
                                      "drop_path_rate": "drop_path_rate", "drop_path_mode": Fixed("uniform"),
                                      "recompute": "recompute"}


@register_arch
class MlpMixer(PooledImageClassifier):
    """``(B, C, H, W) -> logits (B, num_classes)``; the full-grid token MLP is sized for ``img_size``."""

    arch = "mlp_mixer"
    modality = "image"
    config_cls = MlpMixerConfig

    def __init__(self, cfg: MlpMixerConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.embed_dim
        self.patch_embed = PatchEmbed2d(cfg.patch_size, cfg.in_chans, d)
        self.grid_size = patch_grid(cfg.img_size, cfg.patch_size)
        self.encoder = BlockStack(encoder_of(cfg), image_layout(*self.grid_size))
        self.norm = nn.LayerNorm(d, eps=cfg.norm_eps)
        self.head = nn.Linear(d, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()
        init_weights_(self)
        if isinstance(self.head, nn.Linear):  # the JAX Mixer starts its head at zero
            nn.init.zeros_(self.head.weight)

    def input_spec(self) -> InputSpec:
        return InputSpec(self.cfg.in_chans, (self.cfg.img_size, self.cfg.img_size))

    def resize_state_dict(self, sd: dict[str, torch.Tensor], src_cfg: dict, name: str) -> None:
        """Token MLPs of a checkpoint at another ``img_size`` resampled to this grid (the mixer's own rule)."""
        for i, blk in enumerate(self.encoder.blocks):
            blk.mixer.inflate_state_dict(sd, f"encoder.blocks.{i}.mixer.")

    def inflation_source(self) -> Stem2d:
        """Inflation hook: the patch kernel, no positions, the norm before GAP, the head."""
        c, sd = self.cfg, self.state_dict()
        return Stem2d(
            arch=self.arch, encoder=encoder_of(c), encoder_state=sub_state(sd, "encoder."),
            img_size=c.img_size, in_chans=c.in_chans, num_classes=c.num_classes, patch_size=c.patch_size,
            patch_weight=sd["patch_embed.proj.weight"], patch_bias=sd["patch_embed.proj.bias"], pool="avg",
            norm=sub_state(sd, "norm."), head=sub_state(sd, "head."))

    def forward_tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int], int]:
        """``(B, C, H, W) -> normed tokens (B, N, D), grid (1, H', W'), 0``."""
        tokens, grid = self.patch_embed(x)
        tokens, _ = self.encoder(tokens, grid, 0)
        return self.norm(tokens), grid, 0


_SIZES = {"s": dict(embed_dim=512, depth=8), "b": dict(embed_dim=768, depth=12)}


@register_model(MlpMixer)
def mixer_s32_224():
    """MLP-Mixer S/32 at 224"""
    return dict(patch_size=32, **_SIZES["s"])


@register_model(MlpMixer)
def mixer_s16_224():
    """MLP-Mixer S/16 at 224"""
    return dict(patch_size=16, **_SIZES["s"])


@register_model(MlpMixer)
def mixer_b32_224():
    """MLP-Mixer B/32 at 224"""
    return dict(patch_size=32, **_SIZES["b"])


@register_model(MlpMixer)
def mixer_b16_224():
    """MLP-Mixer B/16 at 224"""
    return dict(patch_size=16, **_SIZES["b"])


@register_model(MlpMixer)
def mixer_tiny_builtin():
    """CPU-sized MLP-Mixer for the built-in image set (32 px, patch 4)"""
    return dict(img_size=32, patch_size=4, embed_dim=128, depth=4, num_heads=4, num_classes=10)
