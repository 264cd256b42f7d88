"""Key mapping shared by timm / DeiT ViTs and the official TimeSformer (same block naming)."""

from __future__ import annotations

import re

import torch

from .rename import rename_key

# (pattern, replacement) on the part after "blocks.{i}."
_BLOCK_RULES = [
    (r"^norm1\.", "mixer.norm."),
    (r"^attn\.", "mixer.attn."),
    (r"^temporal_norm1\.", "mixer.temporal_norm."),
    (r"^temporal_attn\.", "mixer.temporal_attn."),
    (r"^temporal_fc\.", "mixer.temporal_fc."),
    (r"^norm2\.", "ffn.norm."),
    (r"^mlp\.", "ffn."),
    (r"^ls([12])\.gamma$", r"ls\1.gamma"),
    (r"^gamma_([12])$", r"ls\1.gamma"),
]
_TOP_RULES = [(r"^attn_pool\.", "pool.attn_pool.")]


def convert_vit_keys(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """timm / DeiT / official-TimeSformer names -> ours. Returns (converted, keys no rule knew)."""
    out, unknown = {}, []
    for k, v in sd.items():
        m = re.match(r"^blocks\.(\d+)\.(.*)$", k)
        if m:
            rest = m.group(2)
            new = rename_key(rest, _BLOCK_RULES)
            if new is None:
                unknown.append(k)
            else:
                out[f"encoder.blocks.{m.group(1)}.{new}"] = v
            continue
        out[rename_key(k, _TOP_RULES) or k] = v
    return out, unknown


def block_depth(sd: dict, prefix: str = "blocks.") -> int:
    idx = [int(m.group(1)) for k in sd if (m := re.match(rf"^{re.escape(prefix)}(\d+)\.", k))]
    return max(idx) + 1 if idx else 0


#: Heads of the standard config for a given width (checkpoints do not store it).
HEADS_FOR_WIDTH = {192: 3, 384: 6, 512: 8, 768: 12, 1024: 16, 1280: 16}


def heads_for_width(dim: int) -> int:
    return HEADS_FOR_WIDTH.get(dim, max(1, dim // 64))


def assumed_heads(fmt: str, heads, why: str) -> dict[str, str]:
    """``Detected.assumed`` for a format that stores no head count (the weights of any count have one shape)."""
    return {"num_heads": f"{fmt} stores no head count: assumed num_heads={heads} ({why}); a model trained with "
                         "another count gives other outputs: pass num_heads=N (load_pretrained(..., num_heads=N); "
                         "spatio inflate --num-heads N) to set it"}
