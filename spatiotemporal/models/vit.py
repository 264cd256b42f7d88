"""Vision Transformer for images, DeiT III style (LayerScale, stochastic depth, token/GAP/MAP heads)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from timm.layers import trunc_normal_
from torch import nn

from ..layers import PatchEmbed2d, image_layout, init_weights_, patch_grid, resize_pos_embed_2d
from ._registry import register_arch, register_model
from .base import InputSpec, SpatioModel
from .convert import CheckpointFormatError
from .encoder import VIT_ENCODER_FIELDS, BlockStack, encoder_of
from .heads import Pool
from .inflation.stem import Stem2d, sub_state
from .validate import check_config


@dataclass
class ViTConfig:
    """Every architectural choice of :class:`VisionTransformer`."""

    img_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    num_classes: int = 1000
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    norm_eps: float = 1e-6
    init_values: float | None = None  # LayerScale; DeiT III trains with 1e-4
    drop_path_rate: float = 0.0
    drop_path_mode: str = "linear"
    recompute: str = "none"  # activation checkpointing per block: none | pointwise | projections | full
    class_token: bool = True
    no_embed_class: bool = False  # True: the class token has no position slot (DeiT III)
    global_pool: str = "token"  # token | avg | map
    fc_norm: bool = False  # avg only: LayerNorm after pooling (timm) instead of before (big_vision)
    mixer: str = "joint"
    ffn: str = "mlp"
    mixer_kwargs: dict = field(default_factory=dict)
    ffn_kwargs: dict = field(default_factory=dict)
    pos_interp: str = "bicubic"

    def __post_init__(self) -> None:
        check_config(self, heads=(("embed_dim", "num_heads"),), multiples=(("img_size", "patch_size"),))

    #: The encoder's fields in this config (``encoder_of`` / ``with_encoder``): the ViT's names.
    ENCODER_FIELDS: ClassVar[dict] = VIT_ENCODER_FIELDS


@register_arch
class VisionTransformer(SpatioModel):
    """``(B, C, H, W) -> logits (B, num_classes)``; any patch and image size (pos-embed resized)."""

    arch = "vit"
    modality = "image"
    config_cls = ViTConfig
    own_no_weight_decay = ("pos_embed", "cls_token")

    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.embed_dim
        self.patch_embed = PatchEmbed2d(cfg.patch_size, cfg.in_chans, d)
        self.grid_size = patch_grid(cfg.img_size, cfg.patch_size)
        self.num_prefix = 1 if cfg.class_token else 0
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d)) if cfg.class_token else None
        n_pos = self.grid_size[0] * self.grid_size[1] + (0 if cfg.no_embed_class else self.num_prefix)
        self.pos_embed = nn.Parameter(torch.zeros(1, n_pos, d))
        self.encoder = BlockStack(encoder_of(cfg), image_layout(*self.grid_size))
        use_fc_norm = cfg.global_pool == "avg" and cfg.fc_norm
        self.norm = nn.Identity() if use_fc_norm else nn.LayerNorm(d, eps=cfg.norm_eps)
        self.pool = Pool(cfg.global_pool, d, cfg.num_heads, cfg.mlp_ratio, cfg.norm_eps)
        self.fc_norm = nn.LayerNorm(d, eps=cfg.norm_eps) if use_fc_norm else nn.Identity()
        self.head = nn.Linear(d, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()
        trunc_normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=1e-6)
        init_weights_(self)

    def input_spec(self) -> InputSpec:
        return InputSpec(self.cfg.in_chans, (self.cfg.img_size, self.cfg.img_size))

    @property
    def pos_prefix(self) -> int:
        """Position slots of the prefix tokens (0 when the class token has none, DeiT III)."""
        return 0 if self.cfg.no_embed_class else self.num_prefix

    def resize_state_dict(self, sd: dict[str, torch.Tensor], src_cfg: dict, name: str) -> None:
        resize_2d_pos_embed(sd, src_cfg, self.grid_size, self.pos_prefix, self.cfg.pos_interp, name)

    def inflation_source(self) -> Stem2d:
        """Inflation hook: patch kernel, positions, class token and its slot, the token / GAP / MAP head."""
        c, sd = self.cfg, self.state_dict()
        slot = self.pos_prefix
        pe = sd["pos_embed"].detach()
        fc = c.global_pool == "avg" and c.fc_norm
        return Stem2d(
            arch=self.arch, encoder=encoder_of(c), encoder_state=sub_state(sd, "encoder."),
            img_size=c.img_size, in_chans=c.in_chans, num_classes=c.num_classes, patch_size=c.patch_size,
            patch_weight=sd["patch_embed.proj.weight"], patch_bias=sd["patch_embed.proj.bias"],
            positions=lambda grid, mode: resize_pos_embed_2d(pe[:, slot:], self.grid_size, grid, 0, mode),
            cls_token=sd.get("cls_token"), cls_pos=pe[:, :1] if slot else None, pool=c.global_pool,
            norm_position="after" if fc else "before", norm=sub_state(sd, "fc_norm." if fc else "norm."),
            pool_state=sub_state(sd, "pool."), head=sub_state(sd, "head."))

    def forward_tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int], int]:
        """``(B, C, H, W) -> normed tokens (B, P+N, D), grid (1, H', W'), P``."""
        x, grid = self.patch_embed(x)
        pos = resize_pos_embed_2d(self.pos_embed, self.grid_size, grid[1:], self.pos_prefix, self.cfg.pos_interp)
        if self.cls_token is not None:
            cls = self.cls_token.expand(x.shape[0], -1, -1)
            if self.cfg.no_embed_class:
                x = torch.cat([cls, x + pos], dim=1)
            else:
                x = torch.cat([cls, x], dim=1) + pos
        else:
            x = x + pos
        x, _ = self.encoder(x, grid, self.num_prefix)
        return self.norm(x), grid, self.num_prefix

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> pooled embedding (B, D)`` (before the classifier)."""
        tokens, _, p = self.forward_tokens(x)
        return self.fc_norm(self.pool(tokens, p))

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> last feature map (B, D, 1, H', W')``."""
        tokens, grid, p = self.forward_tokens(x)
        return tokens[:, p:].transpose(1, 2).reshape(x.shape[0], -1, *grid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


def resize_2d_pos_embed(sd: dict, src_cfg: dict, new_grid: tuple[int, int], prefix: int, mode: str,
                        name: str) -> None:
    """Resize ``sd["pos_embed"]`` (a square ``img_size / patch_size`` grid after ``prefix`` slots) in place."""
    if "pos_embed" not in sd:
        return
    pe = sd["pos_embed"]
    side = int(src_cfg.get("img_size", 224)) // int(src_cfg.get("patch_size", 16))
    if pe.shape[1] != prefix + side * side:
        grid = pe.shape[1] - prefix
        raise CheckpointFormatError(
            f"{name}: pos_embed has {pe.shape[1]} slots; expected {prefix} prefix slot(s) + a {side}x{side} grid "
            f"= {prefix + side * side} (img_size {src_cfg.get('img_size')} / patch {src_cfg.get('patch_size')})"
            + (f"; it would fit a {math.isqrt(grid)}x{math.isqrt(grid)} grid" if grid > 0 and
               math.isqrt(grid) ** 2 == grid else ""))
    sd["pos_embed"] = resize_pos_embed_2d(pe, (side, side), new_grid, prefix, mode)


VIT_SIZES: dict[str, dict] = {
    "tiny": dict(embed_dim=192, depth=12, num_heads=3),
    "small": dict(embed_dim=384, depth=12, num_heads=6),
    "base": dict(embed_dim=768, depth=12, num_heads=12),
    "large": dict(embed_dim=1024, depth=24, num_heads=16),
    "huge": dict(embed_dim=1280, depth=32, num_heads=16, patch_size=14),
}


def _sized(size: str, **kw) -> dict:
    return {**VIT_SIZES[size], **kw}


@register_model(VisionTransformer)
def vit_tiny_patch16_224():
    """ViT-T/16 at 224"""
    return _sized("tiny")


@register_model(VisionTransformer)
def vit_small_patch16_224():
    """ViT-S/16 at 224"""
    return _sized("small")


@register_model(VisionTransformer)
def vit_base_patch16_224():
    """ViT-B/16 at 224"""
    return _sized("base")


@register_model(VisionTransformer)
def vit_large_patch16_224():
    """ViT-L/16 at 224"""
    return _sized("large")


@register_model(VisionTransformer)
def vit_huge_patch14_224():
    """ViT-H/14 at 224"""
    return _sized("huge")


_DEIT3 = dict(no_embed_class=True, init_values=1e-4)


@register_model(VisionTransformer)
def deit3_tiny_patch16_224():
    """DeiT III ViT-T/16: LayerScale 1e-4, no class position slot"""
    return _sized("tiny", **_DEIT3)


@register_model(VisionTransformer)
def deit3_small_patch16_224():
    """DeiT III ViT-S/16: LayerScale 1e-4, no class position slot"""
    return _sized("small", **_DEIT3)


@register_model(VisionTransformer)
def deit3_base_patch16_224():
    """DeiT III ViT-B/16: LayerScale 1e-4, no class position slot"""
    return _sized("base", **_DEIT3)


@register_model(VisionTransformer)
def deit3_large_patch16_224():
    """DeiT III ViT-L/16: LayerScale 1e-4, no class position slot"""
    return _sized("large", **_DEIT3)


@register_model(VisionTransformer)
def deit3_huge_patch14_224():
    """DeiT III ViT-H/14: LayerScale 1e-4, no class position slot"""
    return _sized("huge", **_DEIT3)


@register_model(VisionTransformer)
def vit_small_patch16_gap_224():
    """ViT-S/16, global average pooling, no class token"""
    return _sized("small", class_token=False, global_pool="avg", fc_norm=True)


@register_model(VisionTransformer)
def vit_small_patch16_map_224():
    """ViT-S/16, MAP head, no class token"""
    return _sized("small", class_token=False, global_pool="map")


@register_model(VisionTransformer)
def vit_tiny_builtin():
    """CPU-sized ViT for the built-in image set (32 px, patch 8)"""
    return dict(img_size=32, patch_size=8, embed_dim=128, depth=4, num_heads=4, num_classes=10, init_values=1e-4,
                no_embed_class=True, drop_path_rate=0.05)
