"""timm PVTv2 (``pvt_v2_b0``..``b5``) state dicts -> :class:`~spatiotemporal.models.MixVisionTransformer`."""

from __future__ import annotations

import re

from . import Detected, register_converter
from .mit_keys import mit_block_rule, stage_count, stage_depths
from .rename import rename_key
from .vit_keys import assumed_heads

_TOP_RULES = [
    (r"^patch_embed\.", "encoder.stages.0.downsample."),
    (r"^stages\.(\d+)\.downsample\.", r"encoder.stages.\1.downsample."),
    (r"^stages\.(\d+)\.norm\.", r"encoder.stages.\1.norm."),
    (r"^head\.", "head."),
]
_BLOCK_RULES = [
    (r"^norm1\.", "mixer.norm."),
    (r"^attn\.q\.", "mixer.q."),
    (r"^attn\.kv\.", "mixer.kv."),
    (r"^attn\.proj\.", "mixer.proj."),
    (r"^attn\.sr\.", "mixer.sr."),
    (r"^attn\.norm\.", "mixer.sr_norm."),
    (r"^norm2\.", "ffn.norm."),
    (r"^mlp\.(fc1|fc2|dwconv)\.", r"ffn.\1."),
]


def is_timm_pvt_state(sd: dict) -> bool:
    return "patch_embed.proj.weight" in sd and "stages.0.blocks.0.attn.q.weight" in sd


def infer_pvt_config(sd: dict) -> dict:
    """Widths, depths, SR and Mix-FFN ratios, kernels and classes from the tensors; heads (not stored) are
    PVTv2's 1, 2, 5, 8, strides 4, 2, 2, 2."""
    n = stage_count(sd, "stages.")
    dims = tuple(sd[f"stages.{i}.norm.weight"].shape[0] for i in range(n))
    embeds = ["patch_embed.proj.weight"] + [f"stages.{i}.downsample.proj.weight" for i in range(1, n)]
    srs = tuple(sd[f"stages.{i}.blocks.0.attn.sr.weight"].shape[-1] if f"stages.{i}.blocks.0.attn.sr.weight" in sd
                else 1 for i in range(n))
    if any(k.endswith("attn.pool.weight") for k in sd) or (
            "stages.0.blocks.0.attn.sr.weight" in sd and sd["stages.0.blocks.0.attn.sr.weight"].shape[-1] == 1):
        raise ValueError("linear-SRA PVTv2 (pvt_v2_*_li) is not supported")
    return dict(
        embed_dims=dims, depths=stage_depths(sd, "stages.{}.blocks.", n), num_heads=(1, 2, 5, 8)[:n],
        sr_ratios=srs, mlp_ratios=tuple(sd[f"stages.{i}.blocks.0.mlp.fc1.weight"].shape[0] / dims[i]
                                        for i in range(n)),
        patch_sizes=tuple(sd[k].shape[-1] for k in embeds), strides=(4, 2, 2, 2)[:n],
        in_chans=sd["patch_embed.proj.weight"].shape[1],
        num_classes=sd["head.weight"].shape[0] if "head.weight" in sd else 0, norm_eps=1e-6,
    )


def convert_pvt_state(sd: dict) -> tuple[dict, list[str]]:
    out, unknown = {}, []
    for k, v in sd.items():
        m = re.match(r"^stages\.(\d+)\.blocks\.(\d+)\.(.*)$", k)
        if m:
            new = mit_block_rule(_BLOCK_RULES, m.group(3))
            if new is None:
                unknown.append(k)
            else:
                out[f"encoder.stages.{m.group(1)}.blocks.{m.group(2)}.{new}"] = v
            continue
        new = rename_key(k, _TOP_RULES)
        if new is None:
            unknown.append(k)
        else:
            out[new] = v
    return out, unknown


@register_converter("timm PVTv2", priority=85)
def timm_pvt(container: dict, sd: dict, overrides: dict) -> Detected | None:
    """Heads per stage are not stored: PVTv2's 1, 2, 5, 8 unless ``num_heads=`` is given."""
    if not is_timm_pvt_state(sd):
        return None
    conv, unknown = convert_pvt_state(sd)
    cfg = infer_pvt_config(sd)
    return Detected("timm-pvt-v2", "mit", cfg, conv, unknown=unknown,
                    assumed=assumed_heads("a timm PVTv2 state dict", cfg["num_heads"], "PVTv2's heads per stage"))
