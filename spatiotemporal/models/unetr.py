"""UNETR 3D segmenter, ``(B, C, H, W, D) -> (B, out_channels, H, W, D)`` in MONAI's axis order.

The encoder is our block stack (any mixer); the convolutional decoder is built from MONAI's own
UNETR blocks, so with MONAI's settings the structure, the state-dict names of the decoder and the
outputs are MONAI's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from monai.networks.blocks import UnetOutBlock, UnetrBasicBlock, UnetrPrUpBlock, UnetrUpBlock
from timm.layers import trunc_normal_
from torch import nn

from ..layers import PatchEmbed3d, init_weights_, resize_pos_embed_3d, volume_layout
from ._registry import register_arch, register_model
from .base import InputSpec, SpatioModel
from .encoder import BlockStack, EncoderConfig
from .heads import Pool

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
    global_pool: str = "avg"  # forward_features: avg (GAP) | map (Scaling ViT's attention pooling)

    def encoder(self) -> EncoderConfig:
        return EncoderConfig(self.hidden_size, self.num_layers, self.num_heads, self.mixer, self.mixer_kwargs,
                             self.ffn, self.ffn_kwargs, self.mlp_dim / self.hidden_size, self.qkv_bias, self.norm_eps,
                             self.init_values, self.drop_path_rate, "linear")


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
    MONAI's ``(H, W, D)``: a mixer with a depth axis (divided, space-only) runs along D.
    """

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
        self.grid_size = tuple(int(i) // cfg.patch_size for i in cfg.img_size)
        self.skips = resolve_skips(cfg, s)
        h, f = cfg.hidden_size, cfg.feature_size
        self.patch_embed = PatchEmbed3d(cfg.patch_size, cfg.in_channels, h)
        self.pos_embed = nn.Parameter(torch.zeros(1, math.prod(self.grid_size), h))
        self.encoder = BlockStack(cfg.encoder(), volume_layout(*self.grid_size))
        self.norm = nn.LayerNorm(h, eps=cfg.norm_eps)
        if cfg.global_pool == "token":
            raise ValueError("UNETR has no class token: global_pool must be 'avg' or 'map'")
        self.pool = Pool(cfg.global_pool, h, cfg.num_heads, cfg.mlp_dim / h, cfg.norm_eps)
        common = dict(spatial_dims=3, norm_name=cfg.norm_name, res_block=cfg.res_block)
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
        self.out = UnetOutBlock(spatial_dims=3, in_channels=f, out_channels=cfg.out_channels)
        trunc_normal_(self.pos_embed, std=0.02, a=-2.0, b=2.0)
        init_weights_(self.encoder)  # the decoder keeps MONAI's own initialisation
        init_weights_(self.pool)

    def input_spec(self) -> InputSpec:
        return InputSpec(self.cfg.in_channels, tuple(int(s) for s in self.cfg.img_size))

    def resize_state_dict(self, sd: dict[str, torch.Tensor], src_cfg: dict, name: str) -> None:
        pe = sd.get("pos_embed")
        if pe is None or pe.shape == self.pos_embed.shape:
            return
        size = src_cfg.get("img_size", self.cfg.img_size)
        old = tuple(int(s) // int(src_cfg.get("patch_size", self.cfg.patch_size)) for s in size)
        if math.prod(old) != pe.shape[1]:
            raise ValueError(f"{name}: pos_embed has {pe.shape[1]} tokens, not the grid {old} of img_size {size}")
        sd["pos_embed"] = resize_pos_embed_3d(pe, old, self.grid_size, 0, self.cfg.pos_interp)

    def _to_map(self, x: torch.Tensor, grid) -> torch.Tensor:
        return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], *grid)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], tuple[int, int, int]]:
        """``(B, C, H, W, D) -> normed tokens (B, N, hidden), skip tokens, grid``."""
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
        """``(B, C, H, W, D) -> last decoder feature map (B, feature_size, H, W, D)`` (before ``out``)."""
        return self._decode(x)

    def _decode(self, x: torch.Tensor) -> torch.Tensor:
        tokens, skips, grid = self.encode(x)
        enc = [self.encoder1(x)] + [
            getattr(self, f"encoder{j}")(self._to_map(t, grid)) for j, t in zip(range(2, self.stages + 1), skips)
        ]
        y = self._to_map(tokens, grid)
        for j in range(self.stages + 1, 1, -1):
            y = getattr(self, f"decoder{j}")(y, enc[j - 2])
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self._decode(x))


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
