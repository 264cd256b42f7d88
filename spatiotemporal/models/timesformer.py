"""TimeSformer video classifier, ``(B, 3, T, H, W) -> (B, num_classes)``, with any token mixer."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from einops import rearrange
from timm.layers import trunc_normal_
from torch import nn

from ..layers import PatchEmbed2d, resize_pos_embed_2d, resize_time_embed
from .encoder import BlockStack

ATTENTION_ALIASES = {
    "divided_space_time": "divided",
    "joint_space_time": "joint",
}


@dataclass
class TimeSformerConfig:
    """Every architectural choice of :class:`TimeSformer`; the defaults are the official base 8x224."""

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
    attention: str = "divided"  # divided | joint | space_only | any registered mixer (xca, sra, ...)
    ffn: str = "mlp"
    mixer_kwargs: dict = field(default_factory=dict)
    ffn_kwargs: dict = field(default_factory=dict)
    init_values: float | None = None
    drop_path_rate: float = 0.1
    drop_path_mode: str = "linear"
    time_embed_std: float = 0.0  # official: zeros (an inflated model then equals its ViT); >0: trunc-normal init
    pos_interp: str = "bicubic"  # official: nearest
    time_interp: str = "linear"  # official: nearest
    mean: tuple = (0.45, 0.45, 0.45)
    std: tuple = (0.225, 0.225, 0.225)


class TimeSformer(nn.Module):
    """Per-frame patch embedding, a per-frame position embedding, a time embedding and a block stack.

    Tokens are ``(B, 1 + T*N, D)`` in (t, h, w) order after one class token. ``space_only`` follows
    the official code exactly: frames are folded into the batch, each with its own class token,
    and all tokens are averaged over time before the final norm.
    """

    def __init__(self, cfg: TimeSformerConfig):
        super().__init__()
        cfg.attention = ATTENTION_ALIASES.get(cfg.attention, cfg.attention)
        self.cfg = cfg
        d = cfg.embed_dim
        self.space_only = cfg.attention == "space_only"
        self.patch_embed = PatchEmbed2d(cfg.patch_size, cfg.in_chans, d)
        self.grid_size = (cfg.img_size // cfg.patch_size,) * 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid_size[0] * self.grid_size[1] + 1, d))
        self.time_embed = None if self.space_only else nn.Parameter(torch.zeros(1, cfg.num_frames, d))
        mixer = "joint" if self.space_only else cfg.attention
        self.encoder = BlockStack(
            d, cfg.depth, cfg.num_heads, mixer, cfg.ffn, cfg.mlp_ratio, cfg.qkv_bias, cfg.norm_eps,
            cfg.init_values, cfg.drop_path_rate, cfg.drop_path_mode, cfg.mixer_kwargs, cfg.ffn_kwargs,
        )
        self.norm = nn.LayerNorm(d, eps=cfg.norm_eps)
        self.head = nn.Linear(d, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()
        self._init_weights()

    def _init_weights(self) -> None:
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)
        if self.time_embed is not None and self.cfg.time_embed_std > 0:
            trunc_normal_(self.time_embed, std=self.cfg.time_embed_std)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for blk in self.encoder.blocks:  # every block, as the official init does in effect
            fc = getattr(blk.mixer, "temporal_fc", None)
            if fc is not None:
                nn.init.zeros_(fc.weight)
                nn.init.zeros_(fc.bias)

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed", "cls_token", "time_embed"}

    def _embed(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        tokens, grid = self.patch_embed(x)
        t, h, w = grid
        pos = resize_pos_embed_2d(self.pos_embed, self.grid_size, (h, w), 1, self.cfg.pos_interp)
        b = x.shape[0]
        tokens = tokens.reshape(b, t, h * w, -1) + pos[:, None, 1:]
        cls = (self.cls_token + pos[:, :1]).expand(b, -1, -1)
        if self.time_embed is not None:
            tokens = tokens + resize_time_embed(self.time_embed, t, self.cfg.time_interp)[:, :, None]
        return torch.cat([cls, tokens.reshape(b, t * h * w, -1)], dim=1), grid

    def forward_tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int], int]:
        """``(B, C, T, H, W) -> normed tokens (B, 1 + T*H'*W', D), grid (T, H', W'), 1``."""
        if x.ndim != 5:
            raise ValueError(f"TimeSformer expects (B, C, T, H, W), got shape {tuple(x.shape)}")
        tokens, grid = self._embed(x)
        b, (t, h, w) = x.shape[0], grid
        if not self.space_only:
            tokens, _ = self.encoder(tokens, grid, 1)
            return self.norm(tokens), grid, 1
        cls, patches = tokens[:, :1], tokens[:, 1:].reshape(b * t, h * w, -1)
        frames = torch.cat([cls.repeat_interleave(t, 0), patches], dim=1)  # (B*T, 1+N, D)
        frames, _ = self.encoder(frames, (1, h, w), 1)
        frames = rearrange(frames, "(b t) n d -> b t n d", b=b)
        cls_out = self.norm(frames.mean(1))[:, :1]
        return torch.cat([cls_out, self.norm(frames[:, :, 1:]).flatten(1, 2)], dim=1), grid, 1

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W) -> normed class token (B, D)``."""
        return self.forward_tokens(x)[0][:, 0]

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W) -> last feature map (B, D, T, H', W')``."""
        tokens, grid, p = self.forward_tokens(x)
        return tokens[:, p:].transpose(1, 2).reshape(x.shape[0], -1, *grid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))

    def config_dict(self) -> dict:
        return asdict(self.cfg)
