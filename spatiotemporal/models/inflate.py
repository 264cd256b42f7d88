"""Inflation: 2D ViT weights initialise video (TimeSformer) and volumetric (UNETR) models.

The rules are the official TimeSformer's for video (spatial attention copied into temporal
attention, ``temporal_fc`` and ``time_embed`` at zero, position embeddings resized in 2D) and, for
volumes, RGB filters summed to one channel (or repeated for C), the 2D patch kernel spread over
depth (averaged, or on the centre slice), and position embeddings resized to the 3D grid.
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers import resize_pos_embed_2d
from .pretrained import load_state_strict
from .registry import build_model
from .timesformer import TimeSformer
from .unetr import UNETR
from .vit import VisionTransformer


def _encoder_shape(vit: VisionTransformer) -> dict:
    c = vit.cfg
    return dict(num_heads=c.num_heads, qkv_bias=c.qkv_bias, norm_eps=c.norm_eps, init_values=c.init_values)


def _vit_pos_grid(vit: VisionTransformer, new_grid: tuple[int, int], mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(class-token slot (1, 1, D) or zeros, grid part resized to ``new_grid`` (1, N', D))."""
    pe = vit.pos_embed.detach()
    has_slot = vit.cls_token is not None and not vit.cfg.no_embed_class
    cls_slot = pe[:, :1] if has_slot else pe.new_zeros(1, 1, pe.shape[-1])
    grid = resize_pos_embed_2d(pe[:, int(has_slot):], vit.grid_size, new_grid, 0, mode)
    return cls_slot, grid


def inflate_vit_to_timesformer(vit: VisionTransformer, **cfg) -> TimeSformer:
    """A TimeSformer whose spatial weights are the ViT's; ``cfg`` sets frames, size, attention, classes.

    On a clip of identical frames the result (divided or space-only) gives the ViT's logits.
    The head is copied when the class counts agree, otherwise freshly initialised.
    """
    if vit.cls_token is None:
        raise ValueError("TimeSformer pools with a class token; this ViT has none (global_pool="
                         f"{vit.cfg.global_pool!r}). Inflate a class-token ViT, or into UNETR.")
    base = dict(img_size=vit.cfg.img_size, patch_size=vit.cfg.patch_size, in_chans=vit.cfg.in_chans,
                num_classes=vit.cfg.num_classes, embed_dim=vit.cfg.embed_dim, depth=vit.cfg.depth,
                mlp_ratio=vit.cfg.mlp_ratio, **_encoder_shape(vit))
    model = build_model("timesformer", {**base, **cfg})
    sd = {k: v for k, v in vit.state_dict().items() if not k.startswith(("pos_embed", "pool.", "fc_norm."))}
    if model.cfg.num_classes != vit.cfg.num_classes:
        sd = {k: v for k, v in sd.items() if not k.startswith("head.")}
    cls_slot, grid = _vit_pos_grid(vit, model.grid_size, model.cfg.pos_interp)
    sd["pos_embed"] = torch.cat([cls_slot, grid], dim=1)
    for k in list(sd):
        for src, dst in ((".mixer.norm.", ".mixer.temporal_norm."), (".mixer.attn.", ".mixer.temporal_attn.")):
            if src in k and model.cfg.attention == "divided":
                sd[k.replace(src, dst)] = sd[k].clone()
    own = model.state_dict()
    fresh = ("head.",) if "head.weight" not in sd else ()
    fresh += tuple(k for k in own if k not in sd and (k == "time_embed" or ".temporal_fc." in k))
    load_state_strict(model, sd, "inflated ViT", allow_missing=fresh)
    if model.time_embed is not None:  # zero (official): a static clip then gives the ViT's logits
        if model.cfg.time_embed_std > 0:
            nn.init.trunc_normal_(model.time_embed, std=model.cfg.time_embed_std)
        else:
            nn.init.zeros_(model.time_embed)
    for blk in model.encoder.blocks:
        fc = getattr(blk.mixer, "temporal_fc", None)
        if fc is not None:
            nn.init.zeros_(fc.weight)
            nn.init.zeros_(fc.bias)
    return model


def inflate_patch_kernel(w2d: torch.Tensor, in_channels: int, depth: int, mode: str = "average") -> torch.Tensor:
    """2D patch kernel ``(D, 3, p, p)`` -> 3D ``(D, C, p, p, depth)`` (depth = last axis, MONAI order).

    RGB filters are summed for one channel, or repeated and scaled by 3/C for C channels; the
    kernel is spread over depth either averaged (``average``) or on the centre slice (``center``),
    so a volume whose slices are all equal gives the 2D model's embedding of one slice.
    """
    if mode not in ("average", "center"):
        raise ValueError(f"depth mode must be 'average' or 'center', got {mode!r}")
    gray = w2d.sum(1, keepdim=True)
    w = gray if in_channels == 1 else gray.repeat(1, in_channels, 1, 1) / in_channels
    if in_channels == w2d.shape[1]:
        w = w2d
    if mode == "average":
        return w.unsqueeze(-1).repeat(1, 1, 1, 1, depth) / depth
    out = w.new_zeros(*w.shape, depth)
    out[..., depth // 2] = w
    return out


def inflate_vit_to_unetr(vit: VisionTransformer, depth_mode: str = "average", **cfg) -> UNETR:
    """A UNETR whose encoder is the ViT (blocks copied, patch kernel and position embedding made 3D).

    ``cfg`` sets the UNETR's ``img_size``, ``in_channels``, ``out_channels``, ``feature_size``...;
    the encoder's width, depth, heads and norms follow the ViT. The decoder starts fresh.
    """
    c = vit.cfg
    base = dict(hidden_size=c.embed_dim, mlp_dim=int(c.embed_dim * c.mlp_ratio), num_layers=c.depth,
                patch_size=c.patch_size, **_encoder_shape(vit))
    model = build_model("unetr", {**cfg, **base})
    gh, gw, gd = model.grid_size
    sd = {k: v for k, v in vit.state_dict().items() if k.startswith(("encoder.", "norm."))}
    sd["patch_embed.proj.weight"] = inflate_patch_kernel(
        vit.patch_embed.proj.weight.detach(), model.cfg.in_channels, model.cfg.patch_size, depth_mode)
    sd["patch_embed.proj.bias"] = vit.patch_embed.proj.bias.detach().clone()
    _, grid = _vit_pos_grid(vit, (gh, gw), "bicubic")
    d = grid.shape[-1]
    sd["pos_embed"] = grid.reshape(1, gh, gw, 1, d).expand(1, gh, gw, gd, d).reshape(1, -1, d)
    decoder = tuple(k for k in model.state_dict() if not k.startswith(("encoder.", "norm.", "patch_embed.", "pos_")))
    load_state_strict(model, sd, "inflated ViT", allow_missing=decoder)
    return model
