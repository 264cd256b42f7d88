"""MViT classifiers: pooling attention lowers the token grid stage by stage while the channels widen.

``mvit`` (videos, ``(B, 3, T, H, W)``): MViTv2-S = torchvision's ``mvit_v2_s``, MViT-B 16x4 = pytorchvideo's
``mvit_base_16x4`` (and torchvision's ``mvit_v1_b``). ``mvit_image`` (images, ``(B, 3, H, W)``): timm's
``mvitv2_*``, whose weights also initialise the video and volume models (``models/inflation/mvit.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch import nn

from ..layers.grid import tokens_to_map
from ._registry import register_arch, register_model
from .base import InputSpec
from .heads import Pool
from .mvit_trunk import MViTEncoderConfig, MViTTrunk


@dataclass
class MViTConfig(MViTEncoderConfig):
    """Every architectural choice of :class:`MViT`; the defaults are MViTv2-S 16x224 on Kinetics-400
    (torchvision ``mvit_v2_s``). See :class:`~.mvit_trunk.MViTEncoderConfig` for the trunk."""

    img_size: int = 224
    num_frames: int = 16
    num_classes: int = 400
    global_pool: str = "token"  # token | avg | map
    head_dropout: float = 0.5
    mean: tuple = (0.45, 0.45, 0.45)
    std: tuple = (0.225, 0.225, 0.225)


@dataclass
class MViTImageConfig(MViTEncoderConfig):
    """Every architectural choice of :class:`MViTImage`; the defaults are timm's ``mvitv2_small``."""

    img_size: int = 224
    num_classes: int = 1000
    patch_kernel: tuple = (7, 7)
    patch_stride: tuple = (4, 4)
    kernel_q: tuple = (1, 3, 3)
    kernel_kv: tuple = (1, 3, 3)
    stride_kv: tuple = (1, 4, 4)
    class_token: bool = False
    global_pool: str = "avg"
    head_dropout: float = 0.0
    drop_path_rate: float = 0.1
    mean: tuple = IMAGENET_DEFAULT_MEAN
    std: tuple = IMAGENET_DEFAULT_STD


class MViTClassifier(MViTTrunk):
    """The trunk, a final LayerNorm, pooling (class token, average or MAP), dropout and a linear head."""

    def __init__(self, cfg, axes: tuple[str, str, str], input_size: tuple[int, ...]):
        if cfg.global_pool == "token" and not cfg.class_token:
            raise ValueError("global_pool='token' needs class_token=True (or use global_pool='avg')")
        super().__init__(cfg, axes, input_size)
        d = self.num_features
        self.norm = nn.LayerNorm(d, eps=cfg.norm_eps)
        self.pool = Pool(cfg.global_pool, d, self.stage_heads[-1], cfg.mlp_ratio, cfg.norm_eps)
        self.head_drop = nn.Dropout(cfg.head_dropout)
        self.head = nn.Linear(d, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()
        self.init_trunk(self.pool, self.head)

    def forward_tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int], int]:
        """Pixels -> normed last-stage tokens ``(B, P+N, D)``, their grid, ``P``."""
        out = self.forward_stages(x)[-1]
        return self.norm(out.tokens), out.grid, self.num_prefix

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pixels -> pooled embedding ``(B, D)`` (before the classifier)."""
        tokens, _, p = self.forward_tokens(x)
        return self.pool(tokens, p)

    def feature_map(self, x: torch.Tensor, stage: int = -1) -> torch.Tensor:
        """Pixels -> one stage's feature map ``(B, D_i, G0, G1, G2)`` (default: the last one, normed as the head
        sees it), for ERFs per stage."""
        outs = self.forward_stages(x)
        out = outs[stage]
        tokens = self.norm(out.tokens) if out is outs[-1] else out.tokens
        return tokens_to_map(tokens[:, self.num_prefix:], out.grid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.head_drop(self.forward_features(x)))


@register_arch
class MViT(MViTClassifier):
    """MViT video classifier, ``(B, C, T, H, W) -> (B, num_classes)``; any input size (relative positions are
    interpolated, absolute ones resized). Grid axes ``(t, h, w)``."""

    arch = "mvit"
    modality = "video"
    config_cls = MViTConfig

    def __init__(self, cfg: MViTConfig):
        super().__init__(cfg, ("t", "h", "w"), (cfg.num_frames, cfg.img_size, cfg.img_size))

    def input_spec(self) -> InputSpec:
        c = self.cfg
        return InputSpec(c.in_chans, (c.num_frames, c.img_size, c.img_size), tuple(c.mean), tuple(c.std))

    def forward_stages(self, x: torch.Tensor):
        if x.ndim != 5:
            raise ValueError(f"MViT expects (B, C, T, H, W), got shape {tuple(x.shape)}")
        return super().forward_stages(x)


@register_arch
class MViTImage(MViTClassifier):
    """MViT image classifier, ``(B, C, H, W) -> (B, num_classes)``; grid axes ``(1, h, w)``, 2D pooling."""

    arch = "mvit_image"
    modality = "image"
    config_cls = MViTImageConfig

    def __init__(self, cfg: MViTImageConfig):
        super().__init__(cfg, ("1", "h", "w"), (cfg.img_size, cfg.img_size))

    def input_spec(self) -> InputSpec:
        c = self.cfg
        return InputSpec(c.in_chans, (c.img_size, c.img_size), tuple(c.mean), tuple(c.std))

    def forward_stages(self, x: torch.Tensor):
        if x.ndim != 4:
            raise ValueError(f"MViTImage expects (B, C, H, W), got shape {tuple(x.shape)}")
        return super().forward_stages(x)


#: MViT v1 (pytorchvideo): absolute separable positions, no residual pooling or relative positions, queries
#: pooled only where strided, widths grow in the MLP, pooled q/k/v normalised at eps 1e-5.
MVIT_V1 = dict(rel_pos=False, residual_pool=False, abs_pos=True, expand_attn=False, pool_q_every_block=False,
               pool_norm_eps=1e-5)


@register_model(MViT)
def mvit_v2_s():
    """MViTv2-S 16x224, Kinetics-400 layout (torchvision mvit_v2_s)"""
    return {}


@register_model(MViT)
def mvit_base_16x4():
    """MViT-B 16x4 (v1), Kinetics-400 layout (pytorchvideo mvit_base_16x4)"""
    return dict(MVIT_V1)


@register_model(MViT)
def mvit_tiny():
    """CPU-sized MViTv2 for the built-in video set (8x32, 3 stages)"""
    return dict(img_size=32, num_frames=8, embed_dim=32, num_heads=1, depths=(1, 2, 1), stride_kv=(1, 2, 2),
                num_classes=4, drop_path_rate=0.0, head_dropout=0.0)


@register_model(MViTImage)
def mvit_image_tiny():
    """MViTv2-T image classifier (timm mvitv2_tiny)"""
    return dict(depths=(1, 2, 5, 2))


@register_model(MViTImage)
def mvit_image_small():
    """MViTv2-S image classifier (timm mvitv2_small)"""
    return dict(depths=(1, 2, 11, 2))


@register_model(MViTImage)
def mvit_image_base():
    """MViTv2-B image classifier (timm mvitv2_base)"""
    return dict(depths=(2, 3, 16, 3), drop_path_rate=0.3)


@register_model(MViTImage)
def mvit_image_builtin():
    """CPU-sized MViTv2 for the built-in image set (32 px, 3 stages)"""
    return dict(img_size=32, embed_dim=32, num_heads=1, depths=(1, 2, 1), stride_kv=(1, 2, 2), num_classes=10,
                drop_path_rate=0.0)
