"""torchvision's video MViT (``mvit_v2_s``, ``mvit_v1_b``) -> :class:`~spatiotemporal.models.MViT`.

torchvision stores no strides: the patch stride (2, 4, 4), the query stride (1, 2, 2) and the adaptive KV stride
(1, 8, 8) of both published models are assumed (``load_pretrained(..., stride_kv=...)`` overrides them); the
input size follows from the relative-position tables (v2) or the position embeddings (v1).
"""

from __future__ import annotations

from . import Detected, register_converter
from .mvit_keys import assumed_strides, block_count, head_dim_of, restage, stage_positions, trunk_config
from .rename import rename_keys

_RULES = [
    (r"^conv_proj\.", "patch_embed.proj."),
    (r"^head\.1\.", "head."),
    (r"^norm\.", "norm."),
    (r"\.norm1\.", ".mixer.norm."),
    (r"\.norm2\.", ".ffn.norm."),
    (r"\.attn\.qkv\.", ".mixer.qkv."),
    (r"\.attn\.project\.0\.", ".mixer.proj."),
    (r"\.attn\.pool_([qkv])\.pool\.weight$", r".mixer.pool_\1.weight"),
    (r"\.attn\.pool_([qkv])\.norm_act\.0\.", r".mixer.norm_\1."),
    (r"\.attn\.rel_pos_([thw])$", r".mixer.rel_pos_\1"),
    (r"\.mlp\.0\.", ".ffn.fc1."),
    (r"\.mlp\.3\.", ".ffn.fc2."),
]
_EMBEDDINGS = {"pos_encoding.class_token": "cls_token", "pos_encoding.class_pos": "pos_embed_class",
               "pos_encoding.spatial_pos": "pos_embed_spatial", "pos_encoding.temporal_pos": "pos_embed_temporal"}


def is_torchvision_mvit(sd: dict) -> bool:
    return "conv_proj.weight" in sd and "pos_encoding.class_token" in sd and "blocks.0.attn.qkv.weight" in sd


@register_converter("torchvision MViT", priority=80)
def torchvision_mvit(container: dict, sd: dict, overrides: dict) -> Detected | None:
    """Widths change in the attention (v2: ``project`` is the skip projection) or in the MLP (v1)."""
    if not is_torchvision_mvit(sd):
        return None
    n = block_count(sd)
    widens = [f"blocks.{k}.project.weight" in sd for k in range(n)]
    k0 = widens.index(True) if any(widens) else None  # v2: qkv projects to the wider width, v1: to its own
    expand_attn = k0 is None or (sd[f"blocks.{k0}.attn.qkv.weight"].shape[0]
                                 == 3 * sd[f"blocks.{k0}.project.weight"].shape[0])
    skip = ".skip.proj." if expand_attn else ".ffn_proj."
    flat = {_EMBEDDINGS.get(k, k): v.reshape(1, -1, v.shape[-1]) if k in _EMBEDDINGS else v for k, v in sd.items()}
    renamed, unknown = rename_keys(flat, _RULES + [(r"\.project\.", skip), (r"^(cls_token|pos_embed_\w+)$", r"\1")])
    state = restage(renamed, stage_positions(widens, expand_attn))
    w = sd["conv_proj.weight"]
    rel_pos = "blocks.0.attn.rel_pos_h" in sd
    if rel_pos:
        t_grid = (sd["blocks.0.attn.rel_pos_t"].shape[0] + 1) // 2
        side = (sd["blocks.0.attn.rel_pos_h"].shape[0] + 1) // 2
    else:
        t_grid, side = sd["pos_encoding.temporal_pos"].shape[0], int(sd["pos_encoding.spatial_pos"].shape[0] ** 0.5)
    stride = tuple(overrides.get("patch_stride", (2, 4, 4)))
    cfg = dict(
        in_chans=w.shape[1], patch_kernel=tuple(w.shape[2:]), img_size=side * stride[1], num_frames=t_grid * stride[0],
        num_classes=sd["head.1.weight"].shape[0], qkv_bias="blocks.0.attn.qkv.bias" in sd, rel_pos=rel_pos,
        residual_pool=rel_pos, abs_pos=not rel_pos, expand_attn=expand_attn, pool_norm_eps=None,
        pool_q_every_block="blocks.0.attn.pool_q.pool.weight" in sd, class_token=True, global_pool="token",
        **trunk_config(state, w.shape[0], head_dim_of(state)),
    )
    return Detected("torchvision-mvit", "mvit", cfg, state, unknown=unknown, assumed=assumed_strides(
        "a torchvision MViT state dict", patch_stride=stride, stride_q=(1, 2, 2), stride_kv=(1, 8, 8)))
