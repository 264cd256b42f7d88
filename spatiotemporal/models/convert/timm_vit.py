"""timm and facebookresearch/deit ViT / DeiT III checkpoints -> :class:`~spatiotemporal.models.VisionTransformer`."""

from __future__ import annotations

import math

from . import Detected, register_converter
from .vit_keys import assumed_heads, block_depth, convert_vit_keys, heads_for_width


def is_vit_state(sd: dict) -> bool:
    w = sd.get("patch_embed.proj.weight")
    return w is not None and w.ndim == 4 and "blocks.0.attn.qkv.weight" in sd and "time_embed" not in sd \
        and "blocks.0.temporal_attn.qkv.weight" not in sd


def infer_vit_config(sd: dict) -> dict:
    """Architecture of a timm/DeiT ViT state dict (num_heads is not stored: the standard one for the width)."""
    w = sd["patch_embed.proj.weight"]
    dim, in_chans, p = w.shape[0], w.shape[1], w.shape[-1]
    has_cls = "cls_token" in sd
    n_pos = sd["pos_embed"].shape[1]
    side = math.isqrt(n_pos)
    no_embed_class = side * side == n_pos and has_cls
    if not no_embed_class:
        side = math.isqrt(n_pos - int(has_cls))
    cfg = dict(
        img_size=side * p, patch_size=p, in_chans=in_chans, embed_dim=dim, depth=block_depth(sd),
        num_heads=heads_for_width(dim), mlp_ratio=sd["blocks.0.mlp.fc1.weight"].shape[0] / dim,
        qkv_bias="blocks.0.attn.qkv.bias" in sd, class_token=has_cls, no_embed_class=no_embed_class,
        num_classes=sd["head.weight"].shape[0] if "head.weight" in sd else 0,
    )
    if "blocks.0.ls1.gamma" in sd or "blocks.0.gamma_1" in sd:
        cfg["init_values"] = 1e-4
    if any(k.startswith("attn_pool.") for k in sd):
        cfg["global_pool"] = "map"
    elif "fc_norm.weight" in sd:
        cfg.update(global_pool="avg", fc_norm=True)
    elif not has_cls:
        cfg["global_pool"] = "avg"
    return cfg


@register_converter("timm/DeiT ViT", priority=90)
def timm_vit(container: dict, sd: dict, overrides: dict) -> Detected | None:
    """``gamma_1`` (deit) and ``ls1.gamma`` (timm) both map to ``ls1.gamma``."""
    if not is_vit_state(sd):
        return None
    conv, unknown = convert_vit_keys(sd)
    cfg = infer_vit_config(sd)
    return Detected("timm-vit", "vit", cfg, conv, unknown=unknown, assumed=assumed_heads(
        "a timm/DeiT ViT state dict", cfg["num_heads"], f"the standard for embed_dim {cfg['embed_dim']}"))
