"""timm's image MViTv2 (``mvitv2_*``) -> :class:`~spatiotemporal.models.MViTImage`.

timm already groups blocks into stages; strides are not stored: the (4, 4) patch stride, (2, 2) query stride and
(4, 4) adaptive KV stride of every timm ``mvitv2`` are assumed. timm adds the residual pooling to the class token
too (``residual_pool_prefix``), unlike the original MViTv2 code.
"""

from __future__ import annotations

from . import Detected, register_converter
from .mvit_keys import assumed_strides, head_dim_of, trunk_config
from .rename import rename_keys

_RULES = [
    (r"^(patch_embed\.proj\.\w+|cls_token)$", r"\1"),
    (r"^norm\.", "norm."),
    (r"^head\.fc\.", "head."),
    (r"\.norm1\.", ".mixer.norm."),
    (r"\.norm2\.", ".ffn.norm."),
    (r"\.attn\.(qkv|proj)\.", r".mixer.\1."),
    (r"\.attn\.(pool_[qkv])\.weight$", r".mixer.\1.weight"),
    (r"\.attn\.(norm_[qkv])\.", r".mixer.\1."),
    (r"\.attn\.(rel_pos_[hw])$", r".mixer.\1"),
    (r"\.mlp\.(fc[12])\.", r".ffn.\1."),
    (r"\.shortcut_proj_attn\.", ".skip.proj."),
    (r"\.shortcut_proj_mlp\.", ".ffn_proj."),
]


def is_timm_mvit(sd: dict) -> bool:
    w = sd.get("patch_embed.proj.weight")
    return w is not None and w.ndim == 4 and "stages.0.blocks.0.attn.qkv.weight" in sd


@register_converter("timm MViTv2", priority=80)
def timm_mvit(container: dict, sd: dict, overrides: dict) -> Detected | None:
    if not is_timm_mvit(sd):
        return None
    if "pos_embed" in sd:
        raise ValueError("timm MViTv2 with an absolute position embedding (use_abs_pos=True) is not supported")
    state, unknown = rename_keys({("encoder." if k.startswith("stages.") else "") + k: v for k, v in sd.items()},
                                 _RULES)
    w = sd["patch_embed.proj.weight"]
    stride = tuple(overrides.get("patch_stride", (4, 4)))
    rel_pos = "stages.0.blocks.0.attn.rel_pos_h" in sd
    pool = next(v for k, v in sd.items() if k.endswith(".attn.pool_k.weight"))
    has_cls = "cls_token" in sd
    side = (sd["stages.0.blocks.0.attn.rel_pos_h"].shape[0] + 1) // 2 if rel_pos else overrides.get("img_size", 224)
    cfg = dict(
        in_chans=w.shape[1], patch_kernel=tuple(w.shape[2:]), img_size=side * stride[0] if rel_pos else side,
        num_classes=sd["head.fc.weight"].shape[0] if "head.fc.weight" in sd else 0,
        qkv_bias="stages.0.blocks.0.attn.qkv.bias" in sd, rel_pos=rel_pos, kernel_q=(1, *pool.shape[2:]),
        kernel_kv=(1, *pool.shape[2:]), expand_attn=not any(".shortcut_proj_mlp." in k for k in sd),
        class_token=has_cls, global_pool="token" if has_cls else "avg", residual_pool_prefix=has_cls,
        **trunk_config(state, w.shape[0], head_dim_of(state)),
    )
    return Detected("timm-mvitv2", "mvit_image", cfg, state, unknown=unknown, assumed=assumed_strides(
        "a timm MViTv2 state dict", patch_stride=stride, stride_q=(1, 2, 2), stride_kv=(1, 4, 4)))
