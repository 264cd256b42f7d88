"""The Mix Transformer (MiT / PVTv2) hierarchy: four stages of overlapping patch embedding + SRA / Mix-FFN blocks
+ LayerNorm, on images ``(1, H, W)`` or volumes ``(H, W, D)``; and the MiT / PVTv2 image classifier.

:class:`MiTEncoderConfig` holds the encoder's fields, shared by every family built on it (the classifier here,
:mod:`.segformer`). ``mixer`` is any registered mixer, one name for every stage or one per stage: ``sr_ratio``
goes to the mixers that take it (SRA), so XCA, joint or pooling attention drop in unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from timm.layers import calculate_drop_path_rates
from torch import nn

from ..layers import (
    MIXERS,
    Block,
    Grid,
    MultiStageEncoder,
    OverlapPatchEmbed,
    Stage,
    StageOutput,
    init_weights_,
    pixels_to_tokens,
    stage_layout,
)
from ..layers.registry import MIXER_CONTRACT, own_options
from ._registry import register_arch, register_model
from .base import InputSpec, SpatioModel
from .intermediates import Intermediate, stage_block_names, stage_intermediates
from .validate import check_config

IMAGE_AXES = ("1", "h", "w")
VOLUME_AXES = ("h", "w", "d")  # MONAI order, depth last


#: The per-stage tuples of :class:`MiTEncoderConfig`: one value per stage each.
STAGE_KEYS = ("depths", "embed_dims", "num_heads", "sr_ratios", "mlp_ratios", "patch_sizes", "strides")


@dataclass
class MiTEncoderConfig:
    """The hierarchical encoder: per-stage widths, depths, heads, SRA reduction ratios, Mix-FFN ratios, patch
    kernels and strides. Defaults: MiT-B0 (SegFormer). ``norm_eps`` is the blocks' and stage norms' epsilon
    (1e-6 in MiT and timm's PVTv2, 1e-5 in Hugging Face's SegFormer); the patch embeddings' and the SR
    reductions' LayerNorms use ``embed_norm_eps`` (1e-5 everywhere). ``recompute``: activation checkpointing in
    training (:mod:`spatiotemporal.layers.recompute`) of every stage's overlapping patch embedding (the first
    one included) and of each block, one unit each; the stage norms and a decoder are not recomputed."""

    embed_dims: tuple = (32, 64, 160, 256)
    depths: tuple = (2, 2, 2, 2)
    num_heads: tuple = (1, 2, 5, 8)
    sr_ratios: tuple = (8, 4, 2, 1)
    mlp_ratios: tuple = (4.0, 4.0, 4.0, 4.0)
    patch_sizes: tuple = (7, 3, 3, 3)
    strides: tuple = (4, 2, 2, 2)
    qkv_bias: bool = True
    norm_eps: float = 1e-6
    embed_norm_eps: float = 1e-5
    mixer: str | tuple = "sra"  # one mixer for every stage, or one per stage
    mixer_kwargs: dict = field(default_factory=dict)
    ffn: str = "mixffn"
    ffn_kwargs: dict = field(default_factory=dict)
    drop_path_rate: float = 0.0
    recompute: str = "none"  # activation checkpointing per stage unit: none | pointwise | projections | full

    def __post_init__(self) -> None:
        check_config(self, same_length=STAGE_KEYS, heads=(("embed_dims", "num_heads"),))

    def stage_mixers(self) -> tuple[str, ...]:
        n = len(self.depths)
        mixers = (self.mixer,) * n if isinstance(self.mixer, str) else tuple(self.mixer)
        if len(mixers) != n:
            raise ValueError(f"mixer: give one name or {n} (one per stage), got {self.mixer!r}")
        return mixers


def mixer_options(name: str, sr_ratio: int, kwargs: dict) -> dict:
    """A stage's mixer options: ``kwargs``, plus the stage's ``sr_ratio`` when the mixer takes one."""
    cls = MIXERS.get(name)
    takes_sr = cls is not None and "sr_ratio" in own_options(cls, MIXER_CONTRACT)
    return {**({"sr_ratio": int(sr_ratio)} if takes_sr else {}), **kwargs}


def build_mit_encoder(cfg: MiTEncoderConfig, in_chans: int, axes: tuple[str, str, str], grid: Grid,
                      ndim: int) -> MultiStageEncoder:
    """Four (``len(depths)``) stages on the grid ``grid`` of the native input; ``ndim`` 2 (images, per slice) or
    3 (volumes) for the patch embeddings; the mixers follow the layout (SRA and Mix-FFN convolve in 3D on
    volumes). Drop-path rates grow linearly over all blocks (timm's ``stagewise``)."""
    dpr = calculate_drop_path_rates(cfg.drop_path_rate, list(cfg.depths), stagewise=True)
    axis = next((i for i, a in enumerate(axes) if a in ("t", "d")), 0)
    stages, cin = [], in_chans
    for i, (dim, depth, mixer) in enumerate(zip(cfg.embed_dims, cfg.depths, cfg.stage_mixers())):
        embed = OverlapPatchEmbed(cin, dim, cfg.patch_sizes[i], cfg.strides[i], ndim=ndim, axis=axis,
                                  norm_eps=cfg.embed_norm_eps, prefix_tokens=False)
        grid = embed.out_grid(grid)
        layout = stage_layout(axes, grid)
        blocks = [Block(dim, num_heads=cfg.num_heads[i], layout=layout, mixer=mixer,
                        mixer_kwargs=mixer_options(mixer, cfg.sr_ratios[i], cfg.mixer_kwargs), ffn=cfg.ffn,
                        ffn_kwargs=cfg.ffn_kwargs, mlp_ratio=cfg.mlp_ratios[i], qkv_bias=cfg.qkv_bias,
                        norm_eps=cfg.norm_eps, drop_path=dpr[i][j]) for j in range(depth)]
        stages.append(Stage(blocks, embed, nn.LayerNorm(dim, eps=cfg.norm_eps)))
        cin = dim
    return MultiStageEncoder(stages, cfg.recompute)


def init_mit_(module: nn.Module) -> None:
    """MiT / PVTv2 initialisation: linear layers trunc-normal 0.02 (then each mixer's own hook), convolutions
    normal with std ``sqrt(2 / fan_out)`` and zero bias."""
    init_weights_(module)
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            fan_out = math.prod(m.kernel_size) * m.out_channels // m.groups
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class MultiStageModel(SpatioModel):
    """A model with a hierarchical encoder (``self.encoder``, a :class:`MultiStageEncoder`): every stage's output
    and named feature maps for per-stage ERFs. Subclasses set ``axes`` and ``ndim``."""

    axes: tuple[str, str, str] = IMAGE_AXES

    def encode(self, x: torch.Tensor) -> list[StageOutput]:
        """``(B, C, H, W)`` or ``(B, C, H, W, D)`` -> each stage's :class:`StageOutput`."""
        tokens, grid = pixels_to_tokens(x)
        return self.encoder(tokens, grid, 0)

    def intermediate_names(self) -> list[str]:
        """``stage1..stageN``: the encoder stages."""
        return [f"stage{i + 1}" for i in range(len(self.encoder.stages))]

    def intermediates(self, x: torch.Tensor, names: list[str]) -> list[Intermediate]:
        """The named stages of :meth:`encode` (or blocks inside them)."""
        return stage_intermediates(self.encoder, lambda: self.encode(x), names, self.num_prefix)

    def inner_intermediate_names(self) -> list[str]:
        """``stage{i}.{j}``: block ``j`` of stage ``i``."""
        return stage_block_names(self.encoder)

    def feature_maps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"stage1": (B, C1, *G1), ..., "stageN": ...}``: every encoder stage's map on its grid (images
        ``(1, h, w)``); segmenters add their decoder head."""
        return {f"stage{i + 1}": o.feature_map() for i, o in enumerate(self.encode(x))}

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The last of :meth:`feature_maps`."""
        return list(self.feature_maps(x).values())[-1]


@dataclass
class MiTConfig(MiTEncoderConfig):
    """The MiT / PVTv2 classifier: the encoder, then the mean of the last stage's tokens and a linear head."""

    img_size: int = 224
    in_chans: int = 3
    num_classes: int = 1000


@register_arch
class MixVisionTransformer(MultiStageModel):
    """``(B, C, H, W) -> logits (B, num_classes)``; any input size (no position embedding). timm's
    ``pvt_v2_b0..b5`` weights load unchanged (``load_pretrained``)."""

    arch = "mit"
    modality = "image"
    config_cls = MiTConfig

    def __init__(self, cfg: MiTConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = build_mit_encoder(cfg, cfg.in_chans, IMAGE_AXES, (1, cfg.img_size, cfg.img_size), 2)
        dim = cfg.embed_dims[-1]
        self.head = nn.Linear(dim, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()
        init_mit_(self)

    def input_spec(self) -> InputSpec:
        return InputSpec(self.cfg.in_chans, (self.cfg.img_size, self.cfg.img_size))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> mean of the last stage's tokens (B, C4)``."""
        return self.encode(x)[-1].tokens.mean(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


PVT_V2_DEPTHS = {"b0": (2, 2, 2, 2), "b1": (2, 2, 2, 2), "b2": (3, 4, 6, 3), "b3": (3, 4, 18, 3),
                 "b4": (3, 8, 27, 3), "b5": (3, 6, 40, 3)}


def mit_sizes(size: str) -> dict:
    """Widths and depths of MiT / PVTv2 ``b0``..``b5`` (heads 1, 2, 5, 8 and SR 8, 4, 2, 1 in all)."""
    dims = (32, 64, 160, 256) if size == "b0" else (64, 128, 320, 512)
    return dict(embed_dims=dims, depths=PVT_V2_DEPTHS[size], num_heads=(1, 2, 5, 8), sr_ratios=(8, 4, 2, 1))


def _pvt_v2(size: str) -> dict:
    mlp = (4.0,) * 4 if size == "b5" else (8.0, 8.0, 4.0, 4.0)
    return dict(mit_sizes(size), mlp_ratios=mlp)


@register_model(MixVisionTransformer)
def pvt_v2_b0():
    """PVTv2-B0 (timm pvt_v2_b0: MiT-B0 widths, Mix-FFN ratios 8, 8, 4, 4), 224 px, 1000 classes"""
    return _pvt_v2("b0")


@register_model(MixVisionTransformer)
def pvt_v2_b1():
    """PVTv2-B1 (timm pvt_v2_b1)"""
    return _pvt_v2("b1")


@register_model(MixVisionTransformer)
def pvt_v2_b2():
    """PVTv2-B2 (timm pvt_v2_b2)"""
    return _pvt_v2("b2")


@register_model(MixVisionTransformer)
def pvt_v2_b3():
    """PVTv2-B3 (timm pvt_v2_b3)"""
    return _pvt_v2("b3")


@register_model(MixVisionTransformer)
def pvt_v2_b4():
    """PVTv2-B4 (timm pvt_v2_b4)"""
    return _pvt_v2("b4")


@register_model(MixVisionTransformer)
def pvt_v2_b5():
    """PVTv2-B5 (timm pvt_v2_b5: Mix-FFN ratio 4 in every stage)"""
    return _pvt_v2("b5")
