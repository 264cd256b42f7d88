"""pytorchvideo's MViT (``create_multiscale_vision_transformers``, e.g. ``mvit_base_16x4``) ->
:class:`~spatiotemporal.models.MViT`.

Separate ``q``/``k``/``v`` projections are concatenated into our ``qkv``; widths grow in the MLP (v1) and the
pooled q/k/v are normalised at eps 1e-5. Strides are not stored: the published (2, 4, 4) patch stride,
(1, 2, 2) query stride and (1, 8, 8) adaptive KV stride are assumed (overridable in ``load_pretrained``).
"""

from __future__ import annotations

import torch

from . import Detected, register_converter
from .mvit_keys import assumed_strides, block_count, head_dim_of, restage, stage_positions, trunk_config
from .rename import rename_keys

_RULES = [
    (r"^patch_embed\.patch_model\.", "patch_embed.proj."),
    (r"^cls_positional_encoding\.(cls_token|pos_embed_spatial|pos_embed_temporal|pos_embed_class)$", r"\1"),
    (r"^norm_embed\.", "norm."),
    (r"^head\.proj\.", "head."),
    (r"\.norm1\.", ".mixer.norm."),
    (r"\.norm2\.", ".ffn.norm."),
    (r"\.attn\.qkv\.", ".mixer.qkv."),
    (r"\.attn\.proj\.", ".mixer.proj."),
    (r"\.attn\.pool_([qkv])\.weight$", r".mixer.pool_\1.weight"),
    (r"\.attn\.norm_([qkv])\.", r".mixer.norm_\1."),
    (r"\.mlp\.fc([12])\.", r".ffn.fc\1."),
    (r"\.proj\.", ".ffn_proj."),
]


def is_pytorchvideo_mvit(sd: dict) -> bool:
    return "patch_embed.patch_model.weight" in sd and "blocks.0.attn.q.weight" in sd


def fuse_qkv(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``attn.q``, ``attn.k``, ``attn.v`` -> one ``attn.qkv`` (rows q, k, v, as our fused projection)."""
    out = {}
    for k, v in sd.items():
        if k.endswith((".attn.k.weight", ".attn.k.bias", ".attn.v.weight", ".attn.v.bias")):
            continue
        if ".attn.q." in k:
            base, kind = k.rsplit(".attn.q.", 1)
            parts = [sd[f"{base}.attn.{p}.{kind}"] for p in "qkv"]
            out[f"{base}.attn.qkv.{kind}"] = torch.cat(parts, dim=0)
        else:
            out[k] = v
    return out


@register_converter("pytorchvideo MViT", priority=80)
def pytorchvideo_mvit(container: dict, sd: dict, overrides: dict) -> Detected | None:
    if not is_pytorchvideo_mvit(sd):
        return None
    if "cls_positional_encoding.pos_embed" in sd:
        raise ValueError("pytorchvideo MViT with one joint position embedding (sep_pos_embed=False) is not "
                         "supported: our MViT v1 uses separate spatial and temporal embeddings")
    n = block_count(sd)
    widens = [f"blocks.{k}.proj.weight" in sd for k in range(n)]
    renamed, unknown = rename_keys(fuse_qkv(sd), _RULES)
    state = restage(renamed, stage_positions(widens, expand_attn=False))
    w = sd["patch_embed.patch_model.weight"]
    stride = tuple(overrides.get("patch_stride", (2, 4, 4)))
    side = int(sd["cls_positional_encoding.pos_embed_spatial"].shape[1] ** 0.5)
    has_cls = "cls_positional_encoding.cls_token" in sd
    cfg = dict(
        in_chans=w.shape[1], patch_kernel=tuple(w.shape[2:]), img_size=side * stride[1],
        num_frames=sd["cls_positional_encoding.pos_embed_temporal"].shape[1] * stride[0],
        num_classes=sd["head.proj.weight"].shape[0], qkv_bias="blocks.0.attn.q.bias" in sd, rel_pos=False,
        residual_pool=False, abs_pos=True, expand_attn=False, pool_norm_eps=1e-5,
        pool_q_every_block="blocks.0.attn.pool_q.weight" in sd, class_token=has_cls,
        global_pool="token" if has_cls else "avg", **trunk_config(state, w.shape[0], head_dim_of(state)),
    )
    return Detected("pytorchvideo-mvit", "mvit", cfg, state, unknown=unknown, assumed=assumed_strides(
        "a pytorchvideo MViT state dict", patch_stride=stride, stride_q=(1, 2, 2), stride_kv=(1, 8, 8)))
