"""XCiT for images (El-Nouby et al. 2021), ``(B, C, H, W) -> (B, num_classes)``, timm's layout and sizes.

Convolutional patch embedding, Fourier position encoding, blocks of XCA + LPI + MLP (the mixer ``xca`` with
XCiT's own LayerScale), then class-attention layers that read a class token appended after the blocks, a final
LayerNorm and the head. The stem, the position encoding and the class-attention blocks are timm's own modules
(``timm.models.xcit``), reused; the blocks are ours, so the ``xca`` mixer carries XCiT's weights to any grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import ClassVar

import torch
from timm.layers import trunc_normal_
from timm.models.xcit import ClassAttentionBlock, ConvPatchEmbed, PositionalEncodingFourier
from torch import nn

from ..layers import image_layout, init_weights_, patch_grid
from ..layers.recompute import run_recomputed
from ._registry import register_arch, register_model
from .base import InputSpec, SpatioModel
from .encoder import BlockStack, Fixed, encoder_of
from .inflation.stem import Stem2d, sub_state
from .validate import check_config


@dataclass
class XCiTConfig:
    """Every architectural choice of :class:`XCiT`; the defaults are ``xcit_nano_12_p16_224``.

    ``eta``: LayerScale init (1.0 for the 12-layer models, 1e-5 for the 24-layer ones); ``tokens_norm``: the
    class-attention layers normalise every token (False only for the nano models). ``patch_size`` is 8 or 16
    (the convolutional stem). Another ``mixer`` replaces XCA + LPI (the block's LayerScale then takes ``eta``).
    ``recompute`` applies to the XCA blocks and to the class-attention layers (not to the stem).
    """

    img_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    num_classes: int = 1000
    embed_dim: int = 128
    depth: int = 12
    num_heads: int = 4
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    eta: float = 1.0
    tokens_norm: bool = False
    cls_attn_layers: int = 2
    global_pool: str = "token"  # token | avg
    norm_eps: float = 1e-6
    drop_path_rate: float = 0.0
    mixer: str = "xca"
    mixer_kwargs: dict = field(default_factory=dict)
    ffn: str = "mlp"
    ffn_kwargs: dict = field(default_factory=dict)
    recompute: str = "none"  # activation checkpointing per block: none | pointwise | projections | full

    def __post_init__(self) -> None:
        check_config(self, heads=(("embed_dim", "num_heads"),), multiples=(("img_size", "patch_size"),))

    #: The encoder's fields in this config (``encoder_of`` / ``with_encoder``): ``{EncoderConfig name: own name}``;
    #: ``eta`` is the blocks' LayerScale, which the ``xca`` mixer moves into XCiT's own scales (its hook).
    ENCODER_FIELDS: ClassVar[dict] = {"dim": "embed_dim", "depth": "depth", "num_heads": "num_heads", "mixer": "mixer",
                                      "mixer_kwargs": "mixer_kwargs", "ffn": "ffn", "ffn_kwargs": "ffn_kwargs",
                                      "mlp_ratio": "mlp_ratio", "qkv_bias": "qkv_bias", "norm_eps": "norm_eps",
                                      "init_values": "eta", "drop_path_rate": "drop_path_rate",
                                      "drop_path_mode": Fixed("uniform"), "recompute": "recompute"}


@register_arch
class XCiT(SpatioModel):
    """``(B, C, H, W) -> logits (B, num_classes)``; any input size divisible by the patch size."""

    arch = "xcit"
    modality = "image"
    config_cls = XCiTConfig
    own_no_weight_decay = ("cls_token", "pos_embed.token_projection.weight", "pos_embed.token_projection.bias")

    def __init__(self, cfg: XCiTConfig):
        super().__init__()
        if cfg.patch_size not in (8, 16):
            raise ValueError(f"XCiT's convolutional stem takes patch_size 8 or 16, got {cfg.patch_size}")
        if cfg.global_pool not in ("token", "avg"):
            raise ValueError(f"XCiT global_pool must be 'token' or 'avg', got {cfg.global_pool!r}")
        self.cfg = cfg
        d = cfg.embed_dim
        self.patch_embed = ConvPatchEmbed(cfg.img_size, cfg.patch_size, cfg.in_chans, d)
        self.pos_embed = PositionalEncodingFourier(dim=d)
        self.grid_size = patch_grid(cfg.img_size, cfg.patch_size)
        self.encoder = BlockStack(encoder_of(cfg), image_layout(*self.grid_size))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        norm = partial(nn.LayerNorm, eps=cfg.norm_eps)
        self.cls_attn_blocks = nn.ModuleList(
            ClassAttentionBlock(d, cfg.num_heads, cfg.mlp_ratio, cfg.qkv_bias, norm_layer=norm, eta=cfg.eta,
                                tokens_norm=cfg.tokens_norm) for _ in range(cfg.cls_attn_layers))
        self.norm = norm(d)
        self.head = nn.Linear(d, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()
        trunc_normal_(self.cls_token, std=0.02)
        init_weights_(self)

    def input_spec(self) -> InputSpec:
        return InputSpec(self.cfg.in_chans, (self.cfg.img_size, self.cfg.img_size))

    def inflation_source(self) -> Stem2d:
        """Inflation hook: the encoder and its Fourier position encoding (computed on the target's grid); the
        convolutional stem, the class-attention layers and the head have no counterpart in a target."""
        c, sd = self.cfg, self.state_dict()
        return Stem2d(
            arch=self.arch, encoder=encoder_of(c), encoder_state=sub_state(sd, "encoder."),
            img_size=c.img_size, in_chans=c.in_chans, num_classes=c.num_classes, patch_size=c.patch_size,
            positions=lambda grid, mode: self.pos_embed(1, *grid).flatten(2).transpose(1, 2), pool="none",
            norm_position="none", dropped=("its convolutional stem, class-attention layers and head",))

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """``(B, C, H, W) -> tokens + Fourier position encoding (B, N, D), grid (1, H', W')``."""
        tokens, (hp, wp) = self.patch_embed(x)
        pos = self.pos_embed(x.shape[0], hp, wp).flatten(2).transpose(1, 2)
        return tokens + pos, (1, hp, wp)

    def forward_tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int], int]:
        """``(B, C, H, W) -> normed tokens (B, 1+N, D)`` (class token first), grid, 1."""
        tokens, grid = self.embed(x)
        tokens, _ = self.encoder(tokens, grid, 0)
        tokens = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), tokens], dim=1)
        for blk in self.cls_attn_blocks:
            tokens = run_recomputed(self.encoder.recompute if self.training else "none", blk, tokens)
        return self.norm(tokens), grid, 1

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> pooled embedding (B, D)``: the class token, or the mean of the patch tokens."""
        tokens = self.forward_tokens(x)[0]
        return tokens[:, 0] if self.cfg.global_pool == "token" else tokens[:, 1:].mean(1)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> last feature map (B, D, 1, H', W')``."""
        tokens, grid, p = self.forward_tokens(x)
        return tokens[:, p:].transpose(1, 2).reshape(x.shape[0], -1, *grid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


#: (embed_dim, depth, num_heads) of timm's XCiT sizes; eta 1.0 at depth 12, 1e-5 at 24; tokens_norm off for nano
XCIT_SIZES = {"nano_12": (128, 12, 4), "tiny_12": (192, 12, 4), "small_12": (384, 12, 8), "tiny_24": (192, 24, 4),
              "small_24": (384, 24, 8), "medium_24": (512, 24, 8), "large_24": (768, 24, 16)}


def xcit_size(size: str, patch: int, img: int = 224) -> dict:
    dim, depth, heads = XCIT_SIZES[size]
    return dict(embed_dim=dim, depth=depth, num_heads=heads, patch_size=patch, img_size=img,
                eta=1.0 if depth == 12 else 1e-5, tokens_norm=not size.startswith("nano"))


def _register_sizes() -> None:
    for size in XCIT_SIZES:
        for patch in (16, 8):
            for img in (224, 384):
                name = f"xcit_{size}_p{patch}_{img}"

                def variant(size=size, patch=patch, img=img) -> dict:
                    return xcit_size(size, patch, img)

                variant.__name__ = name
                variant.__doc__ = f"XCiT-{size.replace('_', '-')} patch {patch} at {img} (timm {name})"
                register_model(XCiT)(variant)


_register_sizes()


@register_model(XCiT)
def xcit_tiny_builtin():
    """CPU-sized XCiT for the built-in image set (32 px, patch 8)"""
    return dict(img_size=32, patch_size=8, embed_dim=128, depth=4, num_heads=4, num_classes=10, tokens_norm=True)
