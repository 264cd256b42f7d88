"""timm and facebookresearch/xcit XCiT state dicts -> :class:`~spatiotemporal.models.XCiT`.

The official files name the position encoding ``pos_embeder`` and fuse the class-attention ``qkv``; both are
read (split into ``q``, ``k``, ``v`` as timm does).
"""

from __future__ import annotations

from . import Detected, register_converter
from .rename import rename_keys
from .vit_keys import block_depth

_RULES = [
    (r"^blocks\.(\d+)\.norm1\.", r"encoder.blocks.\1.mixer.norm."),
    (r"^blocks\.(\d+)\.attn\.", r"encoder.blocks.\1.mixer.attn."),
    (r"^blocks\.(\d+)\.norm3\.", r"encoder.blocks.\1.mixer.lpi_norm."),
    (r"^blocks\.(\d+)\.local_mp\.", r"encoder.blocks.\1.mixer.lpi."),
    (r"^blocks\.(\d+)\.gamma1$", r"encoder.blocks.\1.mixer.gamma1"),
    (r"^blocks\.(\d+)\.gamma3$", r"encoder.blocks.\1.mixer.gamma3"),
    (r"^blocks\.(\d+)\.norm2\.", r"encoder.blocks.\1.ffn.norm."),
    (r"^blocks\.(\d+)\.mlp\.", r"encoder.blocks.\1.ffn."),
    (r"^blocks\.(\d+)\.gamma2$", r"encoder.blocks.\1.ffn.gamma"),
    (r"^(patch_embed|pos_embed|cls_attn_blocks|norm|head)\.", r"\1."),
    (r"^cls_token$", "cls_token"),
]


def _official_to_timm(sd: dict) -> dict:
    out = {}
    for k, v in sd.items():
        k = k.replace("pos_embeder.", "pos_embed.")
        if ".attn.qkv." in k and k.startswith("cls_attn_blocks."):
            for name, part in zip("qkv", v.reshape(3, -1, *v.shape[1:]).unbind(0)):
                out[k.replace(".qkv.", f".{name}.")] = part
            continue
        out[k] = v
    return out


@register_converter("timm/official XCiT", priority=60)
def timm_xcit(container: dict, sd: dict, overrides: dict) -> Detected | None:
    """``eta`` is not stored (it is only an initial value): 1.0 at depth 12, 1e-5 at 24, as the published sizes.
    ``tokens_norm`` is not stored either: off for width 128 (the nano models), on otherwise, unless given."""
    if "blocks.0.local_mp.conv1.weight" not in sd or "cls_token" not in sd:
        return None
    sd = _official_to_timm(sd)
    dim = sd["cls_token"].shape[-1]
    depth = block_depth(sd)
    convs = sum(1 for k in sd if k.startswith("patch_embed.proj.") and k.endswith(".0.weight"))
    cfg = dict(patch_size=2**convs, in_chans=sd["patch_embed.proj.0.0.weight"].shape[1], embed_dim=dim, depth=depth,
               num_heads=sd["blocks.0.attn.temperature"].shape[0],
               mlp_ratio=sd["blocks.0.mlp.fc1.weight"].shape[0] / dim, qkv_bias="blocks.0.attn.qkv.bias" in sd,
               eta=1.0 if depth <= 12 else 1e-5, tokens_norm=dim != 128,
               cls_attn_layers=block_depth(sd, "cls_attn_blocks."),
               num_classes=sd["head.weight"].shape[0] if "head.weight" in sd else 0)
    conv, unknown = rename_keys(sd, _RULES)
    return Detected("timm-xcit", "xcit", cfg, conv, unknown=unknown)
