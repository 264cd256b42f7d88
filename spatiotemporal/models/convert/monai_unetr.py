"""MONAI UNETR state dicts (MONAI 0.7 to 1.6) -> :class:`UNETR`, and ``spatial_dims=2`` ones -> :class:`UNETR2D`."""

from __future__ import annotations

import re

from . import CheckpointFormatError, Detected, register_converter
from .vit_keys import assumed_heads, block_depth, heads_for_width

#: Keys MONAI itself never uses, by version: the <=0.8 class token, the <=0.8 always-built
#: ``conv3`` of residual blocks, the 1.4-1.5 cross-attention and the >=1.4 ``norm_cross_attn``.
DEAD_KEY_PATTERNS = [
    r"^vit\.patch_embedding\.cls_token$",
    r"^encoder\d+\.blocks\.\d+\.1\.conv3\.conv\.weight$",
    r"^vit\.blocks\.\d+\.cross_attn\.",
    r"^vit\.blocks\.\d+\.norm_cross_attn\.",
]

_VIT_RULES = [
    (r"^vit\.patch_embedding\.patch_embeddings\.weight$", "patch_embed.proj.weight"),
    (r"^vit\.patch_embedding\.patch_embeddings\.bias$", "patch_embed.proj.bias"),
    (r"^vit\.patch_embedding\.patch_embeddings\.1\.bias$", "patch_embed.proj.bias"),
    (r"^vit\.patch_embedding\.position_embeddings$", "pos_embed"),
    (r"^vit\.blocks\.(\d+)\.norm1\.", r"encoder.blocks.\1.mixer.norm."),
    (r"^vit\.blocks\.(\d+)\.attn\.qkv\.", r"encoder.blocks.\1.mixer.attn.qkv."),
    (r"^vit\.blocks\.(\d+)\.attn\.out_proj\.", r"encoder.blocks.\1.mixer.attn.proj."),
    (r"^vit\.blocks\.(\d+)\.norm2\.", r"encoder.blocks.\1.ffn.norm."),
    (r"^vit\.blocks\.(\d+)\.mlp\.linear1\.", r"encoder.blocks.\1.ffn.fc1."),
    (r"^vit\.blocks\.(\d+)\.mlp\.linear2\.", r"encoder.blocks.\1.ffn.fc2."),
    (r"^vit\.norm\.", "norm."),
]
_PERCEPTRON_W = "vit.patch_embedding.patch_embeddings.1.weight"


def is_monai_unetr_state(sd: dict) -> bool:
    return "vit.patch_embedding.position_embeddings" in sd and any(k.startswith("decoder") for k in sd)


def is_dead_key(k: str) -> bool:
    return any(re.search(p, k) for p in DEAD_KEY_PATTERNS)


def spatial_dims_of(sd: dict) -> int:
    """2 or 3, from the first decoder convolution (``Conv2d`` or ``Conv3d`` weights)."""
    return sd["encoder1.layer.conv1.conv.weight"].ndim - 2


def patch_size_of(sd: dict, dims: int) -> int | None:
    """The patch size the weights hold: the conv patch embedding's kernel, or the perceptron's ``p^d * C``
    inputs (C from the first decoder convolution); None when neither tells."""
    w = sd.get("vit.patch_embedding.patch_embeddings.weight")
    if w is not None and w.ndim == dims + 2:
        return int(w.shape[-1])
    w, c = sd.get(_PERCEPTRON_W), sd["encoder1.layer.conv1.conv.weight"].shape[1]
    if w is not None and w.ndim == 2:
        p = round((w.shape[1] / c) ** (1 / dims))
        return p if p**dims * c == w.shape[1] else None
    return None


def infer_unetr_config(sd: dict, patch_size: int = 16) -> dict:
    n, hidden = sd["vit.patch_embedding.position_embeddings"].shape[1:]
    dims = spatial_dims_of(sd)
    side = round(n ** (1 / dims))
    conv1 = sd["encoder1.layer.conv1.conv.weight"]
    cfg = dict(
        in_channels=conv1.shape[1], out_channels=sd["out.conv.conv.weight"].shape[0], feature_size=conv1.shape[0],
        hidden_size=hidden, mlp_dim=sd["vit.blocks.0.mlp.linear1.weight"].shape[0],
        num_layers=block_depth(sd, "vit.blocks."), num_heads=heads_for_width(hidden), patch_size=patch_size,
        qkv_bias="vit.blocks.0.attn.qkv.bias" in sd, conv_block="encoder2.blocks.0.1.conv1.conv.weight" in sd,
        res_block="encoder1.layer.conv3.conv.weight" in sd,
        norm_name="batch" if "encoder1.layer.norm1.running_mean" in sd else "instance",
    )
    if side**dims == n:
        cfg["img_size"] = (side * patch_size,) * dims
    return cfg


def convert_unetr_state(sd: dict, patch_size: int = 16, dims: int = 3) -> tuple[dict, list[str]]:
    """MONAI keys -> ours; returns (converted, keys no rule knew). Dead keys are kept (the loader drops those
    our model lacks).

    The perceptron patch embedding ``Linear(p^d C, hidden)`` becomes the equivalent conv kernel:
    ``w.view(hidden, p, p, p, C).permute(0, 4, 1, 2, 3)`` in 3D, ``w.view(hidden, p, p, C).permute(0, 3, 1, 2)``
    in 2D (same token order).
    """
    out, unknown = {}, []
    for k, v in sd.items():
        if k == _PERCEPTRON_W:
            hidden, fan_in = v.shape
            c = fan_in // patch_size**dims
            w = v.reshape(hidden, *(patch_size,) * dims, c)
            out["patch_embed.proj.weight"] = w.permute(0, dims + 1, *range(1, dims + 1)).contiguous()
            continue
        if k.startswith("vit."):
            for pat, rep in _VIT_RULES:
                if re.search(pat, k):
                    out[re.sub(pat, rep, k)] = v
                    break
            else:
                if is_dead_key(k):
                    out[k] = v  # kept under its own name: the loader drops it
                else:
                    unknown.append(k)
            continue
        out[k] = v
    return out, unknown


@register_converter("MONAI UNETR (0.7 to 1.6)", priority=20)
def monai_unetr(container: dict, sd: dict, overrides: dict) -> Detected | None:
    """3D (``unetr``) or ``spatial_dims=2`` (``unetr2d``). The patch size is read from the patch embedding's weights
    (``patch_size=`` overrides it); a non-cubic (non-square) token grid needs ``img_size=(H, W, D)`` (``(H, W)``).
    The head count is not stored: the standard one for the width is assumed with a WARNING unless ``num_heads=``
    is given (MONAI's own default, 12, for ``hidden_size`` 768)."""
    if not is_monai_unetr_state(sd):
        return None
    dims = spatial_dims_of(sd)
    patch = int(overrides.get("patch_size") or patch_size_of(sd, dims) or 16)
    cfg = infer_unetr_config(sd, patch)
    if "img_size" not in cfg and "img_size" not in overrides:
        n = sd["vit.patch_embedding.position_embeddings"].shape[1]
        shape, size = ("a cube", "(H, W, D)") if dims == 3 else ("a square", "(H, W)")
        raise CheckpointFormatError(f"MONAI UNETR with {n} patch tokens is not {shape}; pass img_size={size}")
    conv, unknown = convert_unetr_state(sd, patch, dims)
    heads = assumed_heads("a MONAI UNETR state dict", cfg["num_heads"],
                          f"the standard for hidden_size {cfg['hidden_size']}")
    return Detected("monai-unetr" if dims == 3 else "monai-unetr-2d", "unetr" if dims == 3 else "unetr2d", cfg, conv,
                    tuple(DEAD_KEY_PATTERNS), unknown, assumed=heads)
