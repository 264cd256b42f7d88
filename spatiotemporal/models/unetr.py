"""UNETR segmenters: 3D ``(B, C, H, W, D) -> (B, out_channels, H, W, D)`` in MONAI's axis order, and 2D
(:class:`UNETR2D`, MONAI's ``spatial_dims=2``) ``(B, C, H, W) -> (B, out_channels, H, W)`` on ``(1, H, W)`` grids.

The encoder is our block stack (any mixer); the convolutional decoder is built from MONAI's own
UNETR blocks, so with MONAI's settings the structure, the state-dict names of the decoder and the
outputs are MONAI's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from monai.networks.blocks import UnetOutBlock, UnetrBasicBlock, UnetrPrUpBlock, UnetrUpBlock
from timm.layers import trunc_normal_
from torch import nn

from ..layers import (
    PatchEmbed2d,
    PatchEmbed3d,
    image_layout,
    init_weights_,
    patch_grid,
    resize_pos_embed_3d,
    volume_layout,
)
from ..layers.recompute import run_recomputed
from ._registry import register_arch, register_model
from .base import InputSpec, SpatioModel
from .convert import CheckpointFormatError
from .encoder import BlockStack, PerWidth, encoder_of, with_encoder
from .heads import Pool
from .inflation.stem import Stem2d, inflate_patch_kernel, with_prefix
from .validate import check_config

MONAI_SKIPS = (3, 6, 9)  # 0-based outputs of blocks 4, 7, 10, as in MONAI's code
PAPER_SKIPS = (2, 5, 8)  # z3, z6, z9 of the paper, 1-based


@dataclass
class UNETRConfig:
    """Every architectural choice of :class:`UNETR`; the defaults are MONAI's ``UNETR(1, 14, (96,)*3)``."""

    in_channels: int = 1
    out_channels: int = 14
    img_size: tuple = (96, 96, 96)
    patch_size: int = 16
    feature_size: int = 16
    hidden_size: int = 768
    mlp_dim: int = 3072
    num_layers: int = 12
    num_heads: int = 12
    norm_name: str = "instance"
    conv_block: bool = True
    res_block: bool = True
    qkv_bias: bool = False
    norm_eps: float = 1e-5
    skips: tuple | str = "monai"  # "monai" (3, 6, 9) | "paper" (2, 5, 8) | explicit 0-based indices
    mixer: str = "joint"
    ffn: str = "mlp"
    mixer_kwargs: dict = field(default_factory=dict)
    ffn_kwargs: dict = field(default_factory=dict)
    init_values: float | None = None
    drop_path_rate: float = 0.0
    pos_interp: str = "trilinear"
    recompute: str = "none"  # activation checkpointing per block: none | pointwise | projections | full
    global_pool: str = "avg"  # forward_features: avg (GAP) | map (Scaling ViT's attention pooling)

    def __post_init__(self) -> None:
        check_config(self, heads=(("hidden_size", "num_heads"),), multiples=(("img_size", "patch_size"),))

    #: The encoder's fields in this config (``encoder_of`` / ``with_encoder``): ``{EncoderConfig name: own name}``.
    ENCODER_FIELDS: ClassVar[dict] = {"dim": "hidden_size", "depth": "num_layers", "num_heads": "num_heads",
                                      "mixer": "mixer", "mixer_kwargs": "mixer_kwargs", "ffn": "ffn",
                                      "ffn_kwargs": "ffn_kwargs", "mlp_ratio": PerWidth("mlp_dim"),
                                      "qkv_bias": "qkv_bias", "norm_eps": "norm_eps", "init_values": "init_values",
                                      "drop_path_rate": "drop_path_rate", "recompute": "recompute"}


def resolve_skips(cfg: UNETRConfig, stages: int) -> tuple[int, ...]:
    """Block indices (0-based) whose outputs feed the ``stages - 1`` skip connections."""
    if cfg.skips == "monai" or cfg.skips == "paper":
        base = MONAI_SKIPS if cfg.skips == "monai" else PAPER_SKIPS
        if cfg.num_layers == 12 and stages == 4:
            return base
        off = 0 if cfg.skips == "monai" else -1
        last = cfg.num_layers - 1
        return tuple(min(last, max(0, round(cfg.num_layers * i / stages) + off)) for i in range(1, stages))
    skips = tuple(int(s) for s in cfg.skips)
    if len(skips) != stages - 1 or not all(0 <= s < cfg.num_layers for s in skips):
        raise ValueError(f"skips must be {stages - 1} block indices in [0, {cfg.num_layers}), got {skips}")
    return skips


@register_arch
class UNETR(SpatioModel):
    """ViT encoder on ``patch_size``-cubed patches + MONAI's UNETR decoder.

    With ``patch_size = 2**s`` there are ``s`` upsampling stages: ``encoder2..encoder{s}`` lift the
    skip tokens, ``decoder{s+1}..decoder2`` fuse them; ``s = 4`` gives MONAI's exact layout. The token grid is
    MONAI's ``(H, W, D)``: a mixer with a depth axis (divided, space-only) runs along D. ``spatial_dims`` (class
    level) is 3 here and 2 in :class:`UNETR2D`, whose token grid is ``(1, H', W')``.
    """

    spatial_dims = 3
    arch = "unetr"
    modality = "volume"
    config_cls = UNETRConfig
    head_key = "out_channels"
    head_prefix = "out."
    own_no_weight_decay = ("pos_embed",)

    def __init__(self, cfg: UNETRConfig):
        super().__init__()
        self.cfg = cfg
        s = int(math.log2(cfg.patch_size))
        if 2**s != cfg.patch_size or s < 2:
            raise ValueError(f"patch_size must be a power of two >= 4, got {cfg.patch_size}")
        self.stages = s
        dims = self.spatial_dims
        if len(cfg.img_size) != dims:
            raise ValueError(f"{self.arch}: img_size must have {dims} values, got {cfg.img_size!r}")
        self.grid_size = self.token_grid(cfg.img_size, cfg.patch_size)
        self.skips = resolve_skips(cfg, s)
        h, f = cfg.hidden_size, cfg.feature_size
        self.patch_embed = (PatchEmbed3d if dims == 3 else PatchEmbed2d)(cfg.patch_size, cfg.in_channels, h)
        self.pos_embed = nn.Parameter(torch.zeros(1, math.prod(self.grid_size), h))
        layout = volume_layout(*self.grid_size) if dims == 3 else image_layout(*self.grid_size[1:])
        self.encoder = BlockStack(encoder_of(cfg), layout)
        self.norm = nn.LayerNorm(h, eps=cfg.norm_eps)
        if cfg.global_pool == "token":
            raise ValueError("UNETR has no class token: global_pool must be 'avg' or 'map'")
        self.pool = Pool(cfg.global_pool, h, cfg.num_heads, cfg.mlp_dim / h, cfg.norm_eps)
        common = dict(spatial_dims=dims, norm_name=cfg.norm_name, res_block=cfg.res_block)
        self.encoder1 = UnetrBasicBlock(in_channels=cfg.in_channels, out_channels=f, kernel_size=3, stride=1, **common)
        for j in range(2, s + 1):
            self.add_module(f"encoder{j}", UnetrPrUpBlock(
                in_channels=h, out_channels=f * 2 ** (j - 1), num_layer=s - j, kernel_size=3, stride=1,
                upsample_kernel_size=2, conv_block=cfg.conv_block, **common,
            ))
        for j in range(s + 1, 1, -1):
            cin = h if j == s + 1 else f * 2 ** (j - 1)
            self.add_module(f"decoder{j}", UnetrUpBlock(
                in_channels=cin, out_channels=f * 2 ** (j - 2), kernel_size=3, upsample_kernel_size=2, **common,
            ))
        self.out = UnetOutBlock(spatial_dims=dims, in_channels=f, out_channels=cfg.out_channels)
        trunc_normal_(self.pos_embed, std=0.02, a=-2.0, b=2.0)
        init_weights_(self.encoder)  # the decoder keeps MONAI's own initialisation
        init_weights_(self.pool)

    @classmethod
    def token_grid(cls, img_size, patch_size: int) -> tuple[int, int, int]:
        """The token grid of an input size: ``(H', W', D')``, or ``(1, H', W')`` in 2D."""
        g = patch_grid(tuple(img_size), int(patch_size))
        return g if cls.spatial_dims == 3 else (1, *g)

    def input_spec(self) -> InputSpec:
        return InputSpec(self.cfg.in_channels, tuple(int(s) for s in self.cfg.img_size))

    def resize_state_dict(self, sd: dict[str, torch.Tensor], src_cfg: dict, name: str) -> None:
        pe = sd.get("pos_embed")
        if pe is None or pe.shape == self.pos_embed.shape:
            return
        size = src_cfg.get("img_size", self.cfg.img_size)
        old = self.token_grid(size, src_cfg.get("patch_size", self.cfg.patch_size))
        if math.prod(old) != pe.shape[1]:
            raise CheckpointFormatError(f"{name}: pos_embed has {pe.shape[1]} tokens, not the grid {old} of "
                                        f"img_size {size}")
        sd["pos_embed"] = resize_pos_embed_3d(pe, old, self.grid_size, 0, self.cfg.pos_interp)

    @classmethod
    def stem_config(cls, stem: Stem2d) -> dict:
        """Inflation hook: the 2D encoder; its patch size when the kernel is carried (a power of two >= 4); MAP
        pooling from a MAP head (GAP otherwise)."""
        out = with_encoder(cls.config_cls, stem.encoder)
        if stem.patch_weight is not None and cls._kernel_fits(stem.patch_size):
            out["patch_size"] = stem.patch_size
        return {**out, "global_pool": "map" if stem.pool == "map" else "avg"}

    @staticmethod
    def _kernel_fits(patch_size: int) -> bool:
        return patch_size >= 4 and patch_size & (patch_size - 1) == 0

    def adopt_stem(self, stem: Stem2d, *, depth_mode: str = "average") -> tuple[dict, list[str]]:
        """Inflation hook: ``(tensors, notes)``: the patch kernel made 3D (``inflate_patch_kernel``: RGB filters
        summed for one channel, spread over the patch's depth by ``depth_mode``), the 2D positions resized and
        repeated over depth (2D: the grid's unit axis), the norm and a MAP head; the decoder starts fresh. A class
        token and a classifier have no place here (named in the notes)."""
        c, notes = self.cfg, []
        gh, gw, gd = self.grid_size
        if stem.patch_weight is not None and stem.patch_size == c.patch_size:
            w = stem.patch_weight
            if self.spatial_dims == 3:
                w = inflate_patch_kernel(w, c.in_channels, c.patch_size, depth_mode)
            else:
                w = inflate_patch_kernel(w, c.in_channels, 1, "center")[..., 0]
            sd = {"patch_embed.proj.weight": w, "patch_embed.proj.bias": stem.patch_bias}
        else:
            sd = {}
        grid = (gh, gw) if self.spatial_dims == 3 else (gw, gd)
        pos = stem.grid_positions(grid, "bicubic", c.hidden_size)
        if self.spatial_dims == 3:
            pos = pos.reshape(1, gh, gw, 1, -1).expand(1, gh, gw, gd, pos.shape[-1]).reshape(1, -1, pos.shape[-1])
        sd["pos_embed"] = pos
        if stem.norm_position == "before":
            sd.update(with_prefix("norm.", stem.norm))
        if c.global_pool == "map":
            sd.update(with_prefix("pool.", stem.pool_state))
        if stem.cls_token is not None:
            notes.append("its class token is dropped (UNETR's decoder reads the grid tokens)")
        return sd, notes

    def _to_map(self, x: torch.Tensor, grid) -> torch.Tensor:
        """Tokens -> the decoder's map ``(B, hidden, *spatial)`` (2D: the unit axis of the grid dropped)."""
        return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], *grid[3 - self.spatial_dims:])

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], tuple[int, int, int]]:
        """``(B, C, H, W, D) -> normed tokens (B, N, hidden), skip tokens, grid``. In 2D the grid is ``(1, H', W')``
        and the position embedding is resized bilinearly (trilinear with a unit axis)."""
        tokens, grid = self.patch_embed(x)
        tokens = tokens + resize_pos_embed_3d(self.pos_embed, self.grid_size, grid, 0, self.cfg.pos_interp)
        tokens, skips = self.encoder(tokens, grid, 0, collect=self.skips)
        return self.norm(tokens), skips, grid

    def forward_tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int], int]:
        tokens, _, grid = self.encode(x)
        return tokens, grid, 0

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W, D) -> pooled normed encoder tokens (B, hidden)``: their mean (GAP) or MAP."""
        return self.pool(self.encode(x)[0], 0)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W, D) -> last decoder feature map (B, feature_size, H, W, D)`` (before ``out``); 2D:
        ``(B, feature_size, 1, H, W)``."""
        y = self._decode(x)
        return y if self.spatial_dims == 3 else y.unsqueeze(2)

    def _decode(self, x: torch.Tensor) -> torch.Tensor:
        """The decoder's blocks recompute as the encoder's do (``cfg.recompute``; convolutions count as kept)."""
        policy = self.encoder.recompute if self.training else "none"
        tokens, skips, grid = self.encode(x)
        enc = [run_recomputed(policy, self.encoder1, x)] + [
            run_recomputed(policy, getattr(self, f"encoder{j}"), self._to_map(t, grid))
            for j, t in zip(range(2, self.stages + 1), skips)
        ]
        y = self._to_map(tokens, grid)
        for j in range(self.stages + 1, 1, -1):
            y = run_recomputed(policy, getattr(self, f"decoder{j}"), y, enc[j - 2])
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self._decode(x))


@dataclass
class UNETR2DConfig(UNETRConfig):
    """:class:`UNETRConfig` with a 2D ``img_size`` ``(H, W)``; defaults: MONAI's ``UNETR(1, 14, (96, 96),
    spatial_dims=2)``."""

    img_size: tuple = (96, 96)


@register_arch
class UNETR2D(UNETR):
    """UNETR on images (MONAI ``spatial_dims=2``): 2D patches, ``(1, H', W')`` token grid, MONAI's 2D decoder;
    ``(B, C, H, W) -> (B, out_channels, H, W)``. MONAI's 2D state dicts load unchanged."""

    spatial_dims = 2
    arch = "unetr2d"
    modality = "image_seg"
    config_cls = UNETR2DConfig

    @classmethod
    def input_config(cls, size: tuple[int, ...], num_outputs: int) -> dict:
        return {"img_size": tuple(int(s) for s in size), cls.head_key: num_outputs}


@register_model(UNETR)
def unetr_base():
    """MONAI UNETR defaults (96^3 ROI, 14 classes)"""
    return {}


@register_model(UNETR)
def unetr_small():
    """UNETR with a ViT-S-width encoder, 96^3"""
    return dict(hidden_size=384, mlp_dim=1536, num_heads=6, feature_size=16)


@register_model(UNETR)
def unetr_tiny():
    """CPU-sized UNETR for the built-in phantoms (patch 8, 6 layers)"""
    return dict(img_size=(64, 64, 64), patch_size=8, hidden_size=128, mlp_dim=512, num_layers=6, num_heads=4,
                feature_size=8, out_channels=6)


@register_model(UNETR2D)
def unetr2d_base():
    """MONAI UNETR(spatial_dims=2) defaults (96^2, 14 classes)"""
    return {}


@register_model(UNETR2D)
def unetr2d_tiny():
    """CPU-sized 2D UNETR for the built-in slices (patch 16, 12 layers of width 96, 64^2)"""
    return dict(img_size=(64, 64), hidden_size=96, mlp_dim=384, num_heads=4, feature_size=16, out_channels=6)
