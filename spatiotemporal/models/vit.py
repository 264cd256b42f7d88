"""Vision Transformer for images, DeiT III style (LayerScale, stochastic depth, token/GAP/MAP heads)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from timm.layers import trunc_normal_
from torch import nn

from ..layers import PatchEmbed2d, resize_pos_embed_2d
from .encoder import BlockStack
from .heads import Pool


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
    class_token: bool = True
    no_embed_class: bool = False  # True: the class token has no position slot (DeiT III)
    global_pool: str = "token"  # token | avg | map
    fc_norm: bool = False  # avg only: LayerNorm after pooling (timm) instead of before (big_vision)
    mixer: str = "joint"
    ffn: str = "mlp"
    mixer_kwargs: dict = field(default_factory=dict)
    ffn_kwargs: dict = field(default_factory=dict)
    pos_interp: str = "bicubic"


class VisionTransformer(nn.Module):
    """``(B, C, H, W) -> logits (B, num_classes)``; any patch and image size (pos-embed resized)."""

    def __init__(self, cfg: ViTConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.embed_dim
        self.patch_embed = PatchEmbed2d(cfg.patch_size, cfg.in_chans, d)
        self.grid_size = (cfg.img_size // cfg.patch_size,) * 2
        self.num_prefix = 1 if cfg.class_token else 0
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d)) if cfg.class_token else None
        n_pos = self.grid_size[0] * self.grid_size[1] + (0 if cfg.no_embed_class else self.num_prefix)
        self.pos_embed = nn.Parameter(torch.zeros(1, n_pos, d))
        self.encoder = BlockStack(
            d, cfg.depth, cfg.num_heads, cfg.mixer, cfg.ffn, cfg.mlp_ratio, cfg.qkv_bias, cfg.norm_eps,
            cfg.init_values, cfg.drop_path_rate, cfg.drop_path_mode, cfg.mixer_kwargs, cfg.ffn_kwargs,
        )
        use_fc_norm = cfg.global_pool == "avg" and cfg.fc_norm
        self.norm = nn.Identity() if use_fc_norm else nn.LayerNorm(d, eps=cfg.norm_eps)
        self.pool = Pool(cfg.global_pool, d, cfg.num_heads, cfg.mlp_ratio, cfg.norm_eps)
        self.fc_norm = nn.LayerNorm(d, eps=cfg.norm_eps) if use_fc_norm else nn.Identity()
        self.head = nn.Linear(d, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()
        self._init_weights()

    def _init_weights(self) -> None:
        trunc_normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            nn.init.normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for blk in self.encoder.blocks:  # re-zero what the generic init overwrote
            fc = getattr(blk.mixer, "temporal_fc", None)
            if fc is not None:
                nn.init.zeros_(fc.weight)
                nn.init.zeros_(fc.bias)

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed", "cls_token"}

    def _pos_embed(self, grid: tuple[int, int]) -> torch.Tensor:
        prefix = 0 if self.cfg.no_embed_class else self.num_prefix
        return resize_pos_embed_2d(self.pos_embed, self.grid_size, grid, prefix, self.cfg.pos_interp)

    def forward_tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int], int]:
        """``(B, C, H, W) -> normed tokens (B, P+N, D), grid (1, H', W'), P``."""
        x, grid = self.patch_embed(x)
        pos = self._pos_embed(grid[1:])
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

    def config_dict(self) -> dict:
        return asdict(self.cfg)
