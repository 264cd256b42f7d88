"""Official TimeSformer ``.pyth`` checkpoints (PySlowFast layout) -> :class:`~spatiotemporal.models.TimeSformer`.

The official ``space_only`` model is our ``framewise=True`` with joint attention inside each frame.
"""

from __future__ import annotations

import json
import math

from . import CheckpointFormatError, Detected, register_converter
from .vit_keys import assumed_heads, block_depth, convert_vit_keys, heads_for_width

#: Official attention type -> our (mixer, framewise).
OFFICIAL_ATTENTION = {"divided_space_time": ("divided", False), "joint_space_time": ("joint", False),
                      "space_only": ("joint", True)}


def attention_from_keys(sd: dict) -> str:
    """``divided_space_time`` if temporal attention is present, ``joint_space_time`` if only a time embedding,
    else ``space_only``."""
    if "blocks.0.temporal_attn.qkv.weight" in sd:
        return "divided_space_time"
    return "joint_space_time" if "time_embed" in sd else "space_only"


def attention_from_cfg(cfg) -> str | None:
    """The attention type written in a PySlowFast ``cfg`` (a YAML/JSON string or a dict), if any."""
    if isinstance(cfg, str):
        try:
            cfg = json.loads(cfg)
        except ValueError:
            import yaml

            try:
                cfg = yaml.safe_load(cfg)
            except yaml.YAMLError:
                return None
    if isinstance(cfg, dict):
        t = (cfg.get("TIMESFORMER") or {}).get("ATTENTION_TYPE")
        return t if t in OFFICIAL_ATTENTION else None
    return None


def infer_timesformer_config(sd: dict, file_cfg=None) -> dict:
    """Architecture of an official TimeSformer state dict (keys without the ``model.`` prefix)."""
    attention = attention_from_keys(sd)
    declared = attention_from_cfg(file_cfg)
    if declared is not None and declared != attention:
        raise CheckpointFormatError(f"checkpoint cfg declares attention {declared!r} but its keys are those of "
                                    f"{attention!r}")
    mixer, framewise = OFFICIAL_ATTENTION[attention]
    w = sd["patch_embed.proj.weight"]
    dim, p = w.shape[0], w.shape[-1]
    side = math.isqrt(sd["pos_embed"].shape[1] - 1)
    cfg = dict(
        img_size=side * p, patch_size=p, in_chans=w.shape[1], embed_dim=dim, depth=block_depth(sd),
        num_heads=heads_for_width(dim), mlp_ratio=sd["blocks.0.mlp.fc1.weight"].shape[0] / dim,
        qkv_bias="blocks.0.attn.qkv.bias" in sd, mixer=mixer, framewise=framewise,
        num_classes=sd["head.weight"].shape[0] if "head.weight" in sd else 0,
        pos_interp="nearest", time_interp="nearest",
    )
    if "time_embed" in sd:
        cfg["num_frames"] = sd["time_embed"].shape[1]
    return cfg


def _strip_model_prefix(sd: dict) -> dict:
    return {k[len("model."):] if k.startswith("model.") else k: v for k, v in sd.items()}


@register_converter("official TimeSformer (.pyth)", priority=10)
def official_timesformer(container: dict, sd: dict, overrides: dict) -> Detected | None:
    """PySlowFast files (``model_state`` + ``cfg``), or bare state dicts with TimeSformer's keys."""
    if "model_state" in container:
        sd = _strip_model_prefix(sd)
    elif not ("blocks.0.temporal_attn.qkv.weight" in sd or "time_embed" in sd):
        return None
    if "patch_embed.proj.weight" not in sd:
        return None
    conv, unknown = convert_vit_keys(sd)
    cfg = infer_timesformer_config(sd, container.get("cfg"))
    return Detected("official-timesformer", "timesformer", cfg, conv, unknown=unknown, assumed=assumed_heads(
        "an official TimeSformer checkpoint", cfg["num_heads"], f"the standard for embed_dim {cfg['embed_dim']}"))
