"""TimeSformer video classifier, ``(B, 3, T, H, W) -> (B, num_classes)``, with any token mixer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from einops import rearrange
from timm.layers import trunc_normal_
from torch import nn

from ..layers import (
    PatchEmbed2d,
    image_layout,
    init_weights_,
    patch_grid,
    resize_pos_embed_2d,
    resize_time_embed,
    video_layout,
)
from ._registry import register_arch, register_model
from .base import InputSpec, SpatioModel
from .encoder import VIT_ENCODER_FIELDS, BlockStack, encoder_of, with_encoder
from .heads import Pool
from .inflation.stem import Stem2d, head_if_fits, with_prefix
from .validate import check_config
from .vit import resize_2d_pos_embed


@dataclass
class TimeSformerConfig:
    """Every architectural choice of :class:`TimeSformer`; the defaults are the official base 8x224 (divided).

    ``mixer`` is any registered mixer (``attention`` is accepted as its old name). ``framewise=True`` is the
    official *space-only* TimeSformer: frames are folded into the batch, each with its own class token and no
    time embedding, the mixer runs within each frame, and all tokens are averaged over time before the final norm.
    ``class_token=False`` with ``global_pool="avg"`` (mean of the normed tokens, big_vision's GAP) or ``"map"``
    (attention pooling, Scaling ViT's MAP head) drops the class token.
    """

    img_size: int = 224
    patch_size: int = 16
    num_frames: int = 8
    in_chans: int = 3
    num_classes: int = 400
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    norm_eps: float = 1e-6
    mixer: str = "divided"
    mixer_kwargs: dict = field(default_factory=dict)
    ffn: str = "mlp"
    ffn_kwargs: dict = field(default_factory=dict)
    framewise: bool = False
    class_token: bool = True
    global_pool: str = "token"  # token | avg | map
    init_values: float | None = None
    drop_path_rate: float = 0.1
    drop_path_mode: str = "linear"
    recompute: str = "none"  # activation checkpointing per block: none | pointwise | projections | full
    time_embed_std: float = 0.0  # official: zeros (an inflated model then equals its ViT); >0: trunc-normal init
    pos_interp: str = "bicubic"  # official: nearest
    time_interp: str = "linear"  # official: nearest
    mean: tuple = (0.45, 0.45, 0.45)
    std: tuple = (0.225, 0.225, 0.225)

    def __post_init__(self) -> None:
        check_config(self, heads=(("embed_dim", "num_heads"),), multiples=(("img_size", "patch_size"),))

    #: The encoder's fields in this config (``encoder_of`` / ``with_encoder``): the ViT's names.
    ENCODER_FIELDS: ClassVar[dict] = VIT_ENCODER_FIELDS


@register_arch
class TimeSformer(SpatioModel):
    """Per-frame patch embedding, a per-frame position embedding, a time embedding and a block stack.

    Tokens are ``(B, P + T*N, D)`` in (t, h, w) order after ``P`` = 1 class token or none (``framewise``:
    ``(B*T, P + N, D)``).
    """

    arch = "timesformer"
    modality = "video"
    config_cls = TimeSformerConfig
    own_no_weight_decay = ("pos_embed", "cls_token", "time_embed")

    def __init__(self, cfg: TimeSformerConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.embed_dim
        self.patch_embed = PatchEmbed2d(cfg.patch_size, cfg.in_chans, d)
        self.grid_size = patch_grid(cfg.img_size, cfg.patch_size)
        self.num_prefix = 1 if cfg.class_token else 0
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d)) if cfg.class_token else None
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid_size[0] * self.grid_size[1] + self.num_prefix, d))
        self.time_embed = None if cfg.framewise else nn.Parameter(torch.zeros(1, cfg.num_frames, d))
        layout = image_layout(*self.grid_size) if cfg.framewise else video_layout(cfg.num_frames, *self.grid_size)
        self.encoder = BlockStack(encoder_of(cfg), layout)
        self.norm = nn.LayerNorm(d, eps=cfg.norm_eps)
        self.pool = Pool(cfg.global_pool, d, cfg.num_heads, cfg.mlp_ratio, cfg.norm_eps)
        self.head = nn.Linear(d, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()
        trunc_normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            trunc_normal_(self.cls_token, std=0.02)
        if self.time_embed is not None and cfg.time_embed_std > 0:
            trunc_normal_(self.time_embed, std=cfg.time_embed_std)
        init_weights_(self)

    def input_spec(self) -> InputSpec:
        c = self.cfg
        return InputSpec(c.in_chans, (c.num_frames, c.img_size, c.img_size), tuple(c.mean), tuple(c.std))

    def resize_state_dict(self, sd: dict[str, torch.Tensor], src_cfg: dict, name: str) -> None:
        te = sd.get("time_embed")
        if te is not None and self.time_embed is not None and te.shape[1] != self.cfg.num_frames:
            sd["time_embed"] = resize_time_embed(te, self.cfg.num_frames, self.cfg.time_interp)
        resize_2d_pos_embed(sd, src_cfg, self.grid_size, self.num_prefix, self.cfg.pos_interp, name)

    @classmethod
    def stem_config(cls, stem: Stem2d) -> dict:
        """Inflation hook: the 2D encoder, its patch size (when the kernel is carried), class token and pooling."""
        out = with_encoder(cls.config_cls, stem.encoder)
        if stem.patch_weight is not None:
            out.update(patch_size=stem.patch_size, in_chans=stem.in_chans)
        return {**out, "class_token": stem.cls_token is not None,
                "global_pool": "avg" if stem.pool == "none" else stem.pool}

    def adopt_stem(self, stem: Stem2d, *, depth_mode: str = "average") -> tuple[dict, list[str]]:
        """Inflation hook: ``(tensors, notes)``: the patch kernel applied per frame, the 2D positions resized to
        this grid, zero ``time_embed``, the class token and its slot, the norm, MAP head and classifier; a clip of
        identical frames then gives the 2D model's logits (ViT, MLP-Mixer). ``depth_mode`` is not used."""
        d, notes = self.cfg.embed_dim, []
        sd = {"pos_embed": stem.grid_positions(self.grid_size, self.cfg.pos_interp, d)}
        if stem.patch_weight is not None:
            sd.update({"patch_embed.proj.weight": stem.patch_weight, "patch_embed.proj.bias": stem.patch_bias})
        if self.cls_token is not None:
            slot = stem.cls_pos if stem.cls_pos is not None else torch.zeros(1, 1, d)
            sd.update(cls_token=stem.cls_token, pos_embed=torch.cat([slot, sd["pos_embed"]], dim=1))
        if stem.norm_position == "after":
            notes.append("its norm after pooling (fc_norm) becomes the norm before it (not exact)")
        sd.update(with_prefix("norm.", stem.norm))
        if self.cfg.global_pool == "map":
            sd.update(with_prefix("pool.", stem.pool_state))
        sd.update(head_if_fits(stem, self.cfg.num_classes))
        if self.time_embed is not None and self.cfg.time_embed_std == 0:
            sd["time_embed"] = torch.zeros_like(self.time_embed)  # official: a static clip gives the 2D model's output
        return sd, notes

    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        tokens, grid = self.patch_embed(x)
        t, h, w = grid
        p = self.num_prefix
        pos = resize_pos_embed_2d(self.pos_embed, self.grid_size, (h, w), p, self.cfg.pos_interp)
        b = x.shape[0]
        tokens = tokens.reshape(b, t, h * w, -1) + pos[:, None, p:]
        if self.time_embed is not None:
            tokens = tokens + resize_time_embed(self.time_embed, t, self.cfg.time_interp)[:, :, None]
        tokens = tokens.reshape(b, t * h * w, -1)
        if self.cls_token is None:
            return tokens, grid
        return torch.cat([(self.cls_token + pos[:, :1]).expand(b, -1, -1), tokens], dim=1), grid

    def forward_tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int], int]:
        """``(B, C, T, H, W) -> normed tokens (B, P + T*H'*W', D), grid (T, H', W'), P``."""
        if x.ndim != 5:
            raise ValueError(f"TimeSformer expects (B, C, T, H, W), got shape {tuple(x.shape)}")
        tokens, grid = self._embed(x)
        b, (t, h, w), p = x.shape[0], grid, self.num_prefix
        if not self.cfg.framewise:
            tokens, _ = self.encoder(tokens, grid, p)
            return self.norm(tokens), grid, p
        cls, patches = tokens[:, :p], tokens[:, p:].reshape(b * t, h * w, -1)
        frames = torch.cat([cls.repeat_interleave(t, 0), patches], dim=1)  # (B*T, P+N, D)
        frames, _ = self.encoder(frames, (1, h, w), p)
        frames = rearrange(frames, "(b t) n d -> b t n d", b=b)
        cls_out = self.norm(frames[:, :, :p].mean(1))
        return torch.cat([cls_out, self.norm(frames[:, :, p:]).flatten(1, 2)], dim=1), grid, p

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W) -> pooled embedding (B, D)``: the normed class token, or GAP / MAP of the tokens."""
        tokens, _, p = self.forward_tokens(x)
        return self.pool(tokens, p)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W) -> last feature map (B, D, T, H', W')``."""
        tokens, grid, p = self.forward_tokens(x)
        return tokens[:, p:].transpose(1, 2).reshape(x.shape[0], -1, *grid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


_B = dict(embed_dim=768, depth=12, num_heads=12, patch_size=16)


@register_model(TimeSformer)
def timesformer_base():
    """official TimeSformer 8x224 (divided)"""
    return dict(img_size=224, num_frames=8, **_B)


@register_model(TimeSformer)
def timesformer_hr():
    """official TimeSformer-HR 16x448"""
    return dict(img_size=448, num_frames=16, **_B)


@register_model(TimeSformer)
def timesformer_l():
    """official TimeSformer-L 96x224"""
    return dict(img_size=224, num_frames=96, **_B)


@register_model(TimeSformer)
def timesformer_small():
    """ViT-S TimeSformer 8x112 for CPUs"""
    return dict(img_size=112, num_frames=8, embed_dim=384, depth=12, num_heads=6, patch_size=16)


@register_model(TimeSformer)
def timesformer_tiny():
    """CPU-sized TimeSformer for the built-in video set (8x32, patch 8)"""
    return dict(img_size=32, num_frames=8, embed_dim=128, depth=4, num_heads=4, patch_size=8, num_classes=8,
                drop_path_rate=0.0)
