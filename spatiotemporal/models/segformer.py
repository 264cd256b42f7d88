"""SegFormer: the MiT hierarchy + the all-MLP decoder, for 2D images (``segformer_b0..b5``) and volumes
(``segformer3d_*``, MONAI's ``(H, W, D)`` order; any grid, odd and non-cubic included).

``(B, C, H, W) -> logits (B, K, H, W)`` and ``(B, C, H, W, D) -> (B, K, H, W, D)``: the decoder's logits at
1/4 are upsampled to the input size (bilinear / trilinear, ``align_corners=False``, as Hugging Face's loss
does). Hugging Face ``SegformerForSemanticSegmentation`` state dicts load unchanged (``load_pretrained``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import StageOutput
from ..layers.conv_grid import batchnorm_nd, conv_nd
from ..layers.grid import tokens_to_map
from ._registry import register_arch, register_model
from .base import InputSpec
from .mit import IMAGE_AXES, VOLUME_AXES, MiTEncoderConfig, MultiStageModel, build_mit_encoder, init_mit_, mit_sizes
from .validate import check_config


def init_decoder_(decoder: nn.Module, std: float = 0.02) -> None:
    """Hugging Face SegFormer's rule for the head: linear and conv weights normal(0, 0.02), zero biases (MiT's
    conv rule, std sqrt(2 / fan_out), would start the classifier with logits of std ~5)."""
    for m in decoder.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.Conv3d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class AllMLPDecoder(nn.Module):
    """SegFormer's head on every stage's output: ``Linear(C_i, dim)`` per stage -> resized to the first stage's
    grid (bilinear / trilinear, ``align_corners=False``) -> concatenated last stage first -> ``1x1 conv`` (no
    bias) + BatchNorm + ReLU -> dropout -> ``1x1 conv`` to ``num_classes``. ``ndim`` 2 (images; grids
    ``(1, h, w)``) or 3. ``forward([StageOutput]) -> (B, K, *G1)`` with ``G1`` the first stage's spatial grid.
    """

    def __init__(self, in_dims: Sequence[int], dim: int, num_classes: int, ndim: int, dropout: float = 0.1):
        super().__init__()
        self.ndim = ndim
        self.proj = nn.ModuleList(nn.Linear(c, dim) for c in in_dims)
        self.fuse = conv_nd(ndim)(dim * len(in_dims), dim, 1, bias=False)
        self.norm = batchnorm_nd(ndim)(dim)
        self.act = nn.ReLU()
        self.drop = nn.Dropout(dropout)
        self.classifier = conv_nd(ndim)(dim, num_classes, 1)

    def _spatial(self, m: torch.Tensor) -> torch.Tensor:
        """``(B, C, G0, G1, G2)`` -> the map the convolutions take (images drop their unit axis)."""
        return m.squeeze(2) if self.ndim == 2 else m

    def fused(self, outs: Sequence[StageOutput]) -> torch.Tensor:
        """The fused features before the classifier, ``(B, dim, *G1)``."""
        size = self._spatial(outs[0].feature_map()[:, :1]).shape[2:]
        mode = "bilinear" if self.ndim == 2 else "trilinear"
        maps = []
        for o, proj in zip(outs, self.proj):
            m = self._spatial(tokens_to_map(proj(o.tokens[:, o.num_prefix:]), o.grid))
            maps.append(F.interpolate(m, size=size, mode=mode, align_corners=False))
        return self.drop(self.act(self.norm(self.fuse(torch.cat(maps[::-1], dim=1)))))

    def forward(self, outs: Sequence[StageOutput]) -> torch.Tensor:
        return self.classifier(self.fused(outs))


@dataclass
class SegFormerConfig(MiTEncoderConfig):
    """The encoder (:class:`~.mit.MiTEncoderConfig`) and the decoder. ``img_size``: ``(H, W)`` for images,
    ``(H, W, D)`` for volumes (the native input; any size runs). Defaults: SegFormer-B0 on ADE20K."""

    img_size: tuple = (512, 512)
    in_chans: int = 3
    num_classes: int = 150
    decoder_dim: int = 256
    decoder_dropout: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_config(self, positive=("num_classes",))  # a segmenter predicts at least one class map


class _SegFormerBase(MultiStageModel):
    """Shared by the 2D and 3D families; subclasses set ``arch``, ``modality``, ``axes``, ``ndim``."""

    config_cls = SegFormerConfig
    head_key = "num_classes"
    head_prefix = "decoder.classifier."
    ndim: int = 2

    def __init__(self, cfg: SegFormerConfig):
        super().__init__()
        size = tuple(int(s) for s in (cfg.img_size if isinstance(cfg.img_size, Sequence) else (cfg.img_size,) * 2))
        if len(size) != self.ndim:
            raise ValueError(f"{self.arch}: img_size must have {self.ndim} values, got {cfg.img_size!r}")
        self.cfg, self.img_size = cfg, size
        grid = (1, *size) if self.ndim == 2 else size
        self.encoder = build_mit_encoder(cfg, cfg.in_chans, self.axes, grid, self.ndim)
        self.decoder = AllMLPDecoder(cfg.embed_dims, cfg.decoder_dim, cfg.num_classes, self.ndim, cfg.decoder_dropout)
        init_mit_(self.encoder)
        init_decoder_(self.decoder)

    @classmethod
    def input_config(cls, size: tuple[int, ...], num_outputs: int) -> dict:
        return {"img_size": tuple(int(s) for s in size), cls.head_key: num_outputs}

    def input_spec(self) -> InputSpec:
        return InputSpec(self.cfg.in_chans, self.img_size)

    def _map(self, y: torch.Tensor) -> torch.Tensor:
        """A decoder map as a grid map ``(B, C, G0, G1, G2)`` (images get their unit axis back)."""
        return y.unsqueeze(2) if self.ndim == 2 else y

    def feature_maps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every encoder stage's map and the decoder's fused features (``"head"``), each ``(B, C, *G)``."""
        outs = self.encode(x)
        maps = {f"stage{i + 1}": o.feature_map() for i, o in enumerate(outs)}
        maps["head"] = self._map(self.decoder.fused(outs))
        return maps

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``-> mean of the last stage's tokens (B, C4)``."""
        return self.encode(x)[-1].tokens.mean(1)

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The decoder's logits at the first stage's grid (1/4 of the input), ``(B, K, *G1)``."""
        return self.decoder(self.encode(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mode = "bilinear" if self.ndim == 2 else "trilinear"
        return F.interpolate(self.forward_logits(x), size=x.shape[2:], mode=mode, align_corners=False)


@register_arch
class SegFormer(_SegFormerBase):
    """2D SegFormer, ``(B, C, H, W) -> (B, num_classes, H, W)``."""

    arch = "segformer"
    modality = "image_seg"
    axes = IMAGE_AXES
    ndim = 2


@dataclass
class SegFormer3DConfig(SegFormerConfig):
    """SegFormer3D (OSUPCVLab): MiT-B0 widths, SR ratios 4, 2, 1, 1, decoder width 256; 4 MRI channels and
    3 classes at 128^3 (BraTS)."""

    img_size: tuple = (128, 128, 128)
    in_chans: int = 4
    num_classes: int = 3
    sr_ratios: tuple = (4, 2, 1, 1)


@register_arch
class SegFormer3D(_SegFormerBase):
    """SegFormer on volumes in MONAI's ``(H, W, D)`` order: 3D overlapping patch embeddings, SRA and Mix-FFN in
    3D, trilinear decoder; ``(B, C, H, W, D) -> (B, num_classes, H, W, D)`` on any grid."""

    arch = "segformer3d"
    modality = "volume"
    config_cls = SegFormer3DConfig
    axes = VOLUME_AXES
    ndim = 3


def _segformer(size: str) -> dict:
    return dict(mit_sizes(size), decoder_dim=256 if size in ("b0", "b1") else 768)


@register_model(SegFormer)
def segformer_b0():
    """SegFormer-B0 (MiT-B0, decoder 256), 512^2, 150 classes (ADE20K)"""
    return _segformer("b0")


@register_model(SegFormer)
def segformer_b1():
    """SegFormer-B1 (MiT-B1, decoder 256)"""
    return _segformer("b1")


@register_model(SegFormer)
def segformer_b2():
    """SegFormer-B2 (MiT-B2, decoder 768)"""
    return _segformer("b2")


@register_model(SegFormer)
def segformer_b3():
    """SegFormer-B3 (MiT-B3, decoder 768)"""
    return _segformer("b3")


@register_model(SegFormer)
def segformer_b4():
    """SegFormer-B4 (MiT-B4, decoder 768)"""
    return _segformer("b4")


@register_model(SegFormer)
def segformer_b5():
    """SegFormer-B5 (MiT-B5, decoder 768)"""
    return _segformer("b5")


@register_model(SegFormer3D)
def segformer3d_b0():
    """SegFormer3D as published (OSUPCVLab, BraTS): MiT-B0 widths, SR 4, 2, 1, 1, 128^3, 4 channels, 3 classes"""
    return {}


@register_model(SegFormer3D)
def segformer3d_b1():
    """SegFormer3D with MiT-B1 widths (64, 128, 320, 512), decoder 256"""
    return dict(embed_dims=(64, 128, 320, 512))


@register_model(SegFormer3D)
def segformer3d_b2():
    """SegFormer3D with MiT-B2 widths and depths (3, 4, 6, 3), decoder 768"""
    return dict(embed_dims=(64, 128, 320, 512), depths=(3, 4, 6, 3), decoder_dim=768)
