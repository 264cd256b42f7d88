"""VideoMAE video classifier, ``(B, 3, T, H, W) -> (B, num_classes)``, with any token mixer, and its
masked-autoencoder pretraining model (encoder on the visible tubes + a small pixel-reconstruction decoder).

Tubelet patch embedding (``tubelet_size x patch x patch``, 2x16x16 by default), fixed sinusoidal positions over
the flattened ``(T', H', W')`` token index, no class token, mean pooling + ``fc_norm`` + linear head.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from timm.layers import trunc_normal_
from torch import nn

from ..layers import (
    PatchEmbed3d,
    init_weights_,
    patch_grid,
    resize_pos_embed_2d,
    resize_time_embed,
    sinusoid_table,
    video_layout,
)
from ..utils.errors import UserInputError
from ._registry import register_arch, register_model
from .base import InputSpec, SpatioModel
from .encoder import VIT_ENCODER_FIELDS, BlockStack, EncoderConfig, encoder_of, with_encoder
from .inflation.stem import Stem2d, head_if_fits, inflate_patch_kernel, with_prefix
from .validate import check_config
from .vit import resize_2d_pos_embed


@dataclass
class VideoMAEConfig:
    """Every architectural choice of :class:`VideoMAE`; the defaults are VideoMAE ViT-B 16x224 (Kinetics)."""

    img_size: int = 224
    patch_size: int = 16
    tubelet_size: int = 2
    num_frames: int = 16
    in_chans: int = 3
    num_classes: int = 400
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    norm_eps: float = 1e-6  # block norms (transformers' conversion stores 1e-12)
    fc_norm_eps: float = 1e-5  # the norm after mean pooling
    mixer: str = "joint"
    mixer_kwargs: dict = field(default_factory=dict)
    ffn: str = "mlp"
    ffn_kwargs: dict = field(default_factory=dict)
    init_values: float | None = None
    drop_path_rate: float = 0.1
    drop_path_mode: str = "linear"
    recompute: str = "none"  # activation checkpointing per block (pretraining: decoder too): none | ... | full
    pos_embed: str = "sinusoid"  # sinusoid: fixed, over the (T', H', W') index (VideoMAE) | learned: TimeSformer's
    pool_norm: str = "after"  # after: fc_norm(mean of the tokens) (VideoMAE) | before: mean of fc_norm(tokens) (GAP)
    mean: tuple = (0.485, 0.456, 0.406)
    std: tuple = (0.229, 0.224, 0.225)

    def __post_init__(self) -> None:
        check_config(self, heads=(("embed_dim", "num_heads"),),
                     multiples=(("img_size", "patch_size"), ("num_frames", "tubelet_size")))

    #: The encoder's fields in this config (``encoder_of`` / ``with_encoder``): the ViT's names.
    ENCODER_FIELDS: ClassVar[dict] = VIT_ENCODER_FIELDS


@register_arch
class VideoMAE(SpatioModel):
    """Tubelet embedding + fixed sinusoidal positions + a block stack on the ``(T', H', W')`` grid + mean pool.

    Tokens are ``(B, T'*H'*W', D)`` in (t, h, w) order, no prefix token.
    """

    arch = "videomae"
    modality = "video"
    config_cls = VideoMAEConfig

    own_no_weight_decay = ("pos_embed", "time_embed")

    def __init__(self, cfg: VideoMAEConfig):
        super().__init__()
        if cfg.num_frames % cfg.tubelet_size:
            raise ValueError(f"num_frames {cfg.num_frames} is not divisible by tubelet_size {cfg.tubelet_size}")
        if cfg.pos_embed not in ("sinusoid", "learned") or cfg.pool_norm not in ("after", "before"):
            raise ValueError(f"pos_embed must be 'sinusoid' or 'learned' and pool_norm 'after' or 'before', got "
                             f"{cfg.pos_embed!r} and {cfg.pool_norm!r}")
        self.cfg = cfg
        d = cfg.embed_dim
        self.patch_embed = PatchEmbed3d((cfg.tubelet_size, cfg.patch_size, cfg.patch_size), cfg.in_chans, d)
        self.grid_size = (cfg.num_frames // cfg.tubelet_size, *patch_grid(cfg.img_size, cfg.patch_size))
        self.time_embed = None
        if cfg.pos_embed == "learned":  # a (H'*W') table and a time table starting at zero, as in TimeSformer
            self.pos_embed = nn.Parameter(torch.zeros(1, self.grid_size[1] * self.grid_size[2], d))
            self.time_embed = nn.Parameter(torch.zeros(1, self.grid_size[0], d))
            trunc_normal_(self.pos_embed, std=0.02)
        else:
            self.register_buffer("pos_embed", sinusoid_table(self.num_tokens(self.grid_size), d), persistent=False)
        self.encoder = BlockStack(encoder_of(cfg), video_layout(*self.grid_size))
        self.fc_norm = nn.LayerNorm(d, eps=cfg.fc_norm_eps)
        self.head = nn.Linear(d, cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()
        init_weights_(self)

    @staticmethod
    def num_tokens(grid) -> int:
        return grid[0] * grid[1] * grid[2]

    def input_spec(self) -> InputSpec:
        c = self.cfg
        return InputSpec(c.in_chans, (c.num_frames, c.img_size, c.img_size), tuple(c.mean), tuple(c.std))

    def resize_state_dict(self, sd: dict[str, torch.Tensor], src_cfg: dict, name: str) -> None:
        """Learned positions of a checkpoint at another size or frame count resized to this grid."""
        if self.time_embed is None:
            return
        te = sd.get("time_embed")
        if te is not None and te.shape[1] != self.grid_size[0]:
            sd["time_embed"] = resize_time_embed(te, self.grid_size[0], "linear")
        resize_2d_pos_embed(sd, src_cfg, self.grid_size[1:], 0, "bicubic", name)

    @classmethod
    def stem_config(cls, stem: Stem2d) -> dict:
        """Inflation hook: the 2D encoder, its patch size (when the kernel is carried), learned positions, and the
        norm on the side of pooling where the 2D model has it. VideoMAE has no class token and no MAP head: a 2D
        model with either is refused (one line)."""
        if stem.cls_token is not None or stem.pool in ("token", "map"):
            what = "class token" if stem.cls_token is not None else "MAP head"
            raise UserInputError(f"videomae has no class token and no MAP head, so the {stem.arch} model's {what} "
                                 "cannot be carried: inflate it into timesformer, or use a 2D model with "
                                 "class_token=False and global_pool=avg")
        out = with_encoder(cls.config_cls, stem.encoder)
        if stem.patch_weight is not None:
            out.update(patch_size=stem.patch_size, in_chans=stem.in_chans)
        if stem.norm_position != "none":
            out.update(pool_norm=stem.norm_position, fc_norm_eps=stem.encoder.norm_eps)
        return {**out, "pos_embed": "learned"}

    def adopt_stem(self, stem: Stem2d, *, depth_mode: str = "average") -> tuple[dict, list[str]]:
        """Inflation hook: ``(tensors, notes)``: the patch kernel spread over the tubelet (``depth_mode``:
        ``average`` | ``center``), the 2D positions resized to this grid, zero ``time_embed``, the norm as
        ``fc_norm`` and the classifier: a clip of identical frames then gives the 2D model's logits."""
        d, notes = self.cfg.embed_dim, []
        sd = {"pos_embed": stem.grid_positions(self.grid_size[1:], "bicubic", d),
              "time_embed": torch.zeros_like(self.time_embed)}
        if stem.patch_weight is not None:
            w = inflate_patch_kernel(stem.patch_weight, self.cfg.in_chans, self.cfg.tubelet_size, depth_mode)
            sd.update({"patch_embed.proj.weight": w.movedim(-1, 2), "patch_embed.proj.bias": stem.patch_bias})
        if stem.norm_position == "none":
            notes.append("fc_norm starts fresh (the 2D model has no final norm)")
        sd.update(with_prefix("fc_norm.", stem.norm))
        sd.update(head_if_fits(stem, self.cfg.num_classes))
        return sd, notes

    def group_matcher(self, coarse: bool = False) -> dict:
        """timm's parameter grouping for layer-wise lr decay (``train.optim.layer_decay``): the tubelet embedding,
        one group per block, then the pooled norm and the head, as VideoMAE's ``get_layer_id_for_vit`` numbers
        them (scale ``decay ** (depth + 1 - i)``); learned positions (``pos_embed=learned``) go with the stem."""
        return {"stem": r"^patch_embed|^pos_embed|^time_embed",
                "blocks": [(r"^encoder\.blocks\.(\d+)", None), (r"^fc_norm|^head", (100000,))]}

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """``(B, C, T, H, W) -> tokens + positions (B, N, D), grid (T', H', W')``."""
        if x.ndim != 5:
            raise ValueError(f"VideoMAE expects (B, C, T, H, W), got shape {tuple(x.shape)}")
        tokens, grid = self.patch_embed(x)
        if self.time_embed is not None:
            (t, h, w), (b, _, d) = grid, tokens.shape
            pos = resize_pos_embed_2d(self.pos_embed, self.grid_size[1:], (h, w), 0, "bicubic")
            te = resize_time_embed(self.time_embed, t, "linear")
            return (tokens.view(b, t, h * w, d) + pos[:, None] + te[:, :, None]).reshape(b, -1, d), grid
        pos = self.pos_embed if self.pos_embed.shape[1] == tokens.shape[1] else \
            sinusoid_table(tokens.shape[1], tokens.shape[2]).to(tokens.device)
        return tokens + pos.to(tokens.dtype), grid

    def forward_tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int], int]:
        """``(B, C, T, H, W) -> encoder tokens (B, T'*H'*W', D), grid (T', H', W'), 0``."""
        tokens, grid = self.embed(x)
        tokens, _ = self.encoder(tokens, grid, 0)
        return tokens, grid, 0

    def forward_visible(self, x: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """Encode only the visible tubes: ``keep (B, K)`` indexes the ``H'*W'`` spatial positions kept in every
        time step (tube masking). Returns ``(B, T'*K, D)`` and the grid ``(T', 1, K)`` they form, so any mixer
        that attends along time or over all tokens runs on them unchanged."""
        tokens, (t, h, w) = self.embed(x)
        b, _, d = tokens.shape
        tokens = tokens.view(b, t, h * w, d)
        idx = keep[:, None, :, None].expand(b, t, keep.shape[1], d)
        visible = tokens.gather(2, idx).reshape(b, -1, d)
        grid = (t, 1, keep.shape[1])
        out, _ = self.encoder(visible, grid, 0)
        return out, grid

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W) -> fc_norm(mean of the tokens) (B, D)`` (``pool_norm="before"``: mean of the normed
        tokens)."""
        tokens = self.forward_tokens(x)[0]
        return self.fc_norm(tokens).mean(1) if self.cfg.pool_norm == "before" else self.fc_norm(tokens.mean(1))

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W) -> last feature map (B, D, T', H', W')``."""
        tokens, grid, _ = self.forward_tokens(x)
        return tokens.transpose(1, 2).reshape(x.shape[0], -1, *grid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


class MAEDecoder(nn.Module):
    """VideoMAE's decoder: ``encoder_to_decoder`` (no bias), a learned mask token, fixed sinusoidal positions,
    ``depth`` joint-attention blocks, a norm and a linear head to the pixels of one tube
    (``tubelet * patch * patch * C`` values). ``forward(visible (B, T'*K, D_enc), keep (B, K), grid) ->
    predictions for every token (B, T'*H'*W', P)``. ``recompute``: the blocks' activation checkpointing."""

    def __init__(self, enc_dim: int, dim: int, depth: int, num_heads: int, out_dim: int,
                 grid: tuple[int, int, int], norm_eps: float = 1e-6, recompute: str = "none"):
        super().__init__()
        self.encoder_to_decoder = nn.Linear(enc_dim, dim, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.dim = dim
        cfg = EncoderConfig(dim=dim, depth=depth, num_heads=num_heads, norm_eps=norm_eps, recompute=recompute)
        self.blocks = BlockStack(cfg, video_layout(*grid))
        self.norm = nn.LayerNorm(dim, eps=norm_eps)
        self.head = nn.Linear(dim, out_dim)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        init_weights_(self)

    def forward(self, visible: torch.Tensor, keep: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        t, h, w = grid
        b = visible.shape[0]
        vis = self.encoder_to_decoder(visible).view(b, t, keep.shape[1], self.dim)
        full = self.mask_token.to(vis.dtype).expand(b, t * h * w, self.dim).reshape(b, t, h * w, self.dim).clone()
        full.scatter_(2, keep[:, None, :, None].expand_as(vis), vis)
        full = full.reshape(b, t * h * w, self.dim) + sinusoid_table(t * h * w, self.dim).to(vis)
        out, _ = self.blocks(full, grid, 0)
        return self.head(self.norm(out))


class VideoMAEPretrainer(nn.Module):
    """The masked-autoencoder pretraining model: a :class:`VideoMAE` encoder (``encoder_model``, saved on its own
    after pretraining) and an :class:`MAEDecoder`. ``forward(x, keep) -> pixel predictions (B, N, P)``."""

    def __init__(self, encoder_model: VideoMAE, decoder_dim: int = 384, decoder_depth: int = 4,
                 decoder_heads: int = 6):
        super().__init__()
        if not hasattr(encoder_model, "forward_visible"):
            raise ValueError(f"{type(encoder_model).__name__} cannot encode visible tokens only "
                             "(masked pretraining needs a model with forward_visible, e.g. videomae)")
        self.encoder_model = encoder_model
        c = encoder_model.cfg
        out_dim = c.tubelet_size * c.patch_size * c.patch_size * c.in_chans
        self.decoder = MAEDecoder(c.embed_dim, decoder_dim, decoder_depth, decoder_heads, out_dim,
                                  encoder_model.grid_size, c.norm_eps, c.recompute)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        visible, (t, _, _) = self.encoder_model.forward_visible(x, keep)
        p = self.encoder_model.cfg.patch_size
        return self.decoder(visible, keep, (t, x.shape[-2] // p, x.shape[-1] // p))


def patchify(x: torch.Tensor, tubelet: int, patch: int) -> torch.Tensor:
    """``(B, C, T, H, W) -> (B, T'*H'*W', tubelet*patch*patch, C)``: the pixels of each tube, token order."""
    b, c, t, h, w = x.shape
    x = x.reshape(b, c, t // tubelet, tubelet, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 4, 6, 3, 5, 7, 1).reshape(b, (t // tubelet) * (h // patch) * (w // patch), -1, c)


_S = dict(embed_dim=384, depth=12, num_heads=6)
_B = dict(embed_dim=768, depth=12, num_heads=12)


@register_model(VideoMAE)
def videomae_small():
    """VideoMAE ViT-S 16x224, tubelet 2x16x16"""
    return dict(img_size=224, num_frames=16, patch_size=16, tubelet_size=2, **_S)


@register_model(VideoMAE)
def videomae_base():
    """VideoMAE ViT-B 16x224, tubelet 2x16x16"""
    return dict(img_size=224, num_frames=16, patch_size=16, tubelet_size=2, **_B)


@register_model(VideoMAE)
def videomae_tiny():
    """CPU-sized VideoMAE for the built-in video set (8x32, tubelet 2x8x8)"""
    return dict(img_size=32, num_frames=8, patch_size=8, tubelet_size=2, embed_dim=128, depth=4, num_heads=4,
                num_classes=4, drop_path_rate=0.0)
