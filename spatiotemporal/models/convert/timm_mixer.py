"""timm MLP-Mixer state dicts (``mixer_*``) -> :class:`~spatiotemporal.models.MlpMixer`."""

from __future__ import annotations

import math

from . import Detected, register_converter
from .rename import rename_keys
from .vit_keys import block_depth

_RULES = [
    (r"^stem\.proj\.", "patch_embed.proj."),
    (r"^blocks\.(\d+)\.norm1\.", r"encoder.blocks.\1.mixer.norm."),
    (r"^blocks\.(\d+)\.mlp_tokens\.", r"encoder.blocks.\1.mixer.mlp_tokens."),
    (r"^blocks\.(\d+)\.norm2\.", r"encoder.blocks.\1.ffn.norm."),
    (r"^blocks\.(\d+)\.mlp_channels\.", r"encoder.blocks.\1.ffn."),
    (r"^(norm|head)\.", r"\1."),
]


def is_mixer_state(sd: dict) -> bool:
    return "stem.proj.weight" in sd and "blocks.0.mlp_tokens.fc1.weight" in sd


@register_converter("timm MLP-Mixer", priority=60)
def timm_mixer(container: dict, sd: dict, overrides: dict) -> Detected | None:
    """The grid is the token MLP's length (a square); the token hidden size gives ``token_ratio``."""
    if not is_mixer_state(sd):
        return None
    w = sd["stem.proj.weight"]
    dim, p = w.shape[0], w.shape[-1]
    tok_hidden, n = sd["blocks.0.mlp_tokens.fc1.weight"].shape
    side = math.isqrt(n)
    if side * side != n:
        raise ValueError(f"MLP-Mixer token MLP over {n} tokens is not a square grid")
    cfg = dict(img_size=side * p, patch_size=p, in_chans=w.shape[1], embed_dim=dim, depth=block_depth(sd),
               token_ratio=tok_hidden / dim, mlp_ratio=sd["blocks.0.mlp_channels.fc1.weight"].shape[0] / dim,
               num_classes=sd["head.weight"].shape[0] if "head.weight" in sd else 0)
    conv, unknown = rename_keys(sd, _RULES)
    return Detected("timm-mixer", "mlp_mixer", cfg, conv, unknown=unknown)
