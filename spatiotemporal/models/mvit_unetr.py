"""MViT-UNETR 3D segmenter, ``(B, C, H, W, D) -> (B, out_channels, H, W, D)`` in MONAI's axis order.

The encoder is the MViT trunk on the volume's grid (3D pooling, relative positions along h, w and d); its stages
(strides 4, 8, 16, 32 for four stages) feed a UNETR-style decoder built from MONAI's blocks, as MONAI's SwinUNETR
does for its hierarchical encoder: each stage's tokens through a ``UnetrBasicBlock``, then ``UnetrUpBlock``s
upsample by the query stride and fuse the next finer stage, and a last one upsamples by the patch stride and fuses
a ``UnetrBasicBlock`` on the input voxels. Why this head and not SegFormer's all-MLP one: the output is at full
resolution with a skip from the voxels (the all-MLP head predicts at stride 4 and upsamples 4x, which blurs
organ boundaries on small phantoms), every piece is a MONAI block (no layer of our own), and it matches the
package's UNETR, so the two segmenters differ only in their encoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from monai.networks.blocks import UnetOutBlock, UnetrBasicBlock, UnetrUpBlock
from torch import nn

from ..layers.grid import tokens_to_map
from ..layers.recompute import run_recomputed
from ..utils.errors import UserInputError
from ._registry import register_arch, register_model
from .base import InputSpec
from .mvit_trunk import MViTEncoderConfig, MViTTrunk


@dataclass
class MViTUNETRConfig(MViTEncoderConfig):
    """Every architectural choice of :class:`MViTUNETR`: the MViT trunk on ``(H, W, D)`` volumes (see
    :class:`~.mvit_trunk.MViTEncoderConfig`; kernels and strides per axis in that order) and the decoder
    (``feature_size`` f: the decoder has f channels at full resolution, ``f * 2**(i+1)`` at stage ``i``).
    Defaults: MViTv2-S widths on 96^3 crops with 14 classes (BTCV)."""

    in_chans: int = 1
    out_channels: int = 14
    img_size: tuple = (96, 96, 96)
    patch_kernel: tuple = (7, 7, 7)
    patch_stride: tuple = (4, 4, 4)
    stride_q: tuple = (2, 2, 2)
    stride_kv: tuple = (4, 4, 4)
    class_token: bool = False
    drop_path_rate: float = 0.1
    feature_size: int = 16
    norm_name: str = "instance"
    res_block: bool = True


def total_stride(cfg: MViTUNETRConfig) -> tuple[int, ...]:
    """Per axis: the patch stride times the query stride of every later stage (the last stage's voxel stride)."""
    n = len(cfg.depths)
    return tuple(int(p) * int(q) ** (n - 1) for p, q in zip(cfg.patch_stride, cfg.stride_q))


def check_input_size(size: tuple[int, ...], total: tuple[int, ...], stages: int) -> None:
    """An input the decoder can take: every axis of ``size`` ``(H, W, D)`` a multiple of ``total`` (else each
    upsampling would miss the finer stage's grid by a voxel: a user error naming the sizes that work)."""
    if any(s % t for s, t in zip(size, total)):
        near = tuple(max(t, round(s / t) * t) for s, t in zip(size, total))
        raise UserInputError(f"MViTUNETR: input size {size} (H, W, D) is not divisible by the total stride {total} "
                             f"(patch_stride x stride_q^{stages - 1}) on each axis; sizes that work are multiples of "
                             f"it per axis, e.g. {near}")


@register_arch
class MViTUNETR(MViTTrunk):
    """MViT encoder + UNETR-style MONAI decoder; the input size must be divisible by the total stride
    (patch stride times the query stride of every later stage) on each axis."""

    arch = "mvit_unetr"
    modality = "volume"
    config_cls = MViTUNETRConfig
    head_key = "out_channels"
    head_prefix = "out."

    def __init__(self, cfg: MViTUNETRConfig):
        n, total = len(cfg.depths), total_stride(cfg)
        if any(int(s) % t for s, t in zip(cfg.img_size, total)):
            raise ValueError(f"mvit_unetr: img_size {tuple(cfg.img_size)} must be divisible by the total stride "
                             f"{tuple(total)} (patch_stride x stride_q^{n - 1}) on each axis")
        super().__init__(cfg, ("h", "w", "d"), tuple(int(s) for s in cfg.img_size))
        f = cfg.feature_size
        common = dict(spatial_dims=3, norm_name=cfg.norm_name, res_block=cfg.res_block)
        self.encoder_input = UnetrBasicBlock(in_channels=cfg.in_chans, out_channels=f, kernel_size=3, stride=1,
                                             **common)
        self.stage_blocks = nn.ModuleList(
            UnetrBasicBlock(in_channels=d, out_channels=f * 2 ** (i + 1), kernel_size=3, stride=1, **common)
            for i, d in enumerate(self.stage_dims))
        self.decoders = nn.ModuleList(
            UnetrUpBlock(in_channels=f * 2 ** (i + 1), out_channels=f * 2**i, kernel_size=3,
                         upsample_kernel_size=tuple(cfg.stride_q) if i else tuple(cfg.patch_stride), **common)
            for i in range(n))
        self.out = UnetOutBlock(spatial_dims=3, in_channels=f, out_channels=cfg.out_channels)
        self.init_trunk()  # the decoder keeps MONAI's own initialisation

    def input_spec(self) -> InputSpec:
        return InputSpec(self.cfg.in_chans, tuple(int(s) for s in self.cfg.img_size))

    def forward_tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int], int]:
        """``(B, C, H, W, D) -> last-stage tokens (B, N, D_last), grid, 0``."""
        out = self.forward_stages(x)[-1]
        return out.tokens, out.grid, self.num_prefix

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W, D) -> mean of the last stage's tokens (B, D_last)``."""
        tokens, _, p = self.forward_tokens(x)
        return tokens[:, p:].mean(1)

    def feature_map(self, x: torch.Tensor, stage: int | None = None) -> torch.Tensor:
        """``(B, C, H, W, D) -> last decoder feature map (B, feature_size, H, W, D)`` (before ``out``), or with
        ``stage`` that encoder stage's map ``(B, D_i, *grid_i)``."""
        if stage is None:
            return self._decode(x)
        out = self.forward_stages(x)[stage]
        return tokens_to_map(out.tokens[:, self.num_prefix:], out.grid)

    def _decode(self, x: torch.Tensor) -> torch.Tensor:
        """The decoder's blocks recompute as the encoder's do (``cfg.recompute``; convolutions count as kept)."""
        if x.ndim != 5:
            raise ValueError(f"MViTUNETR expects (B, C, H, W, D), got shape {tuple(x.shape)}")
        check_input_size(tuple(x.shape[2:]), total_stride(self.cfg), len(self.cfg.depths))
        policy = self.encoder.recompute if self.training else "none"
        stages = self.forward_stages(x)
        feats = [run_recomputed(policy, blk, tokens_to_map(o.tokens[:, self.num_prefix:], o.grid))
                 for blk, o in zip(self.stage_blocks, stages)]
        y = feats[-1]
        for i in range(len(feats) - 1, 0, -1):
            y = run_recomputed(policy, self.decoders[i], y, feats[i - 1])
        return run_recomputed(policy, self.decoders[0], y, run_recomputed(policy, self.encoder_input, x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self._decode(x))


@register_model(MViTUNETR)
def mvit_unetr_small():
    """MViTv2-S encoder + UNETR-style decoder, 96^3, 14 classes (BTCV)"""
    return {}


@register_model(MViTUNETR)
def mvit_unetr_tiny():
    """CPU-sized MViT-UNETR for the built-in phantoms (48^3, 3 stages)"""
    return dict(img_size=(48, 48, 48), embed_dim=32, num_heads=1, depths=(1, 2, 1), stride_kv=(2, 2, 2),
                feature_size=8, out_channels=6, drop_path_rate=0.0)
