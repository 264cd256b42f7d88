"""Hugging Face ``SegformerForSemanticSegmentation`` state dicts -> :class:`~spatiotemporal.models.SegFormer`.

Both layouts: the one SegFormer weights are published in (``transformers`` 4: ``segformer.encoder.block.{i}.{j}
.attention.self.query``, ``decode_head.linear_c``) and the one ``transformers`` 5 keeps in memory
(``segformer.stages.{i}.blocks.{j}.attention.q_proj``, ``decode_head.linear_projections``). Key and value
projections are concatenated into our ``kv``. Every LayerNorm of the Hugging Face model has eps 1e-5.
"""

from __future__ import annotations

import re

import torch

from . import Detected, register_converter
from .mit_keys import mit_block_rule, stage_count, stage_depths
from .rename import rename_key
from .vit_keys import assumed_heads

#: transformers 4 (published) names -> transformers 5 names, the renames transformers 5 applies on loading.
_V4_TO_V5 = [
    (r"^segformer\.encoder\.patch_embeddings\.(\d+)\.", r"segformer.stages.\1.patch_embeddings."),
    (r"^segformer\.encoder\.block\.(\d+)\.", r"segformer.stages.\1.blocks."),
    (r"^segformer\.encoder\.layer_norm\.(\d+)\.", r"segformer.stages.\1.layer_norm."),
    (r"\.attention\.self\.query\.", ".attention.q_proj."),
    (r"\.attention\.self\.key\.", ".attention.k_proj."),
    (r"\.attention\.self\.value\.", ".attention.v_proj."),
    (r"\.attention\.self\.sr\.", ".attention.sequence_reduction.sequence_reduction."),
    (r"\.attention\.self\.layer_norm\.", ".attention.sequence_reduction.layer_norm."),
    (r"\.attention\.output\.dense\.", ".attention.o_proj."),
    (r"\.mlp\.dense1\.", ".mlp.fc1."),
    (r"\.mlp\.dense2\.", ".mlp.fc2."),
    (r"\.layer_norm_1\.", ".layernorm_before."),
    (r"\.layer_norm_2\.", ".layernorm_after."),
    (r"^decode_head\.linear_c\.", "decode_head.linear_projections."),
]
_BLOCK_RULES = [
    (r"^layernorm_before\.", "mixer.norm."),
    (r"^attention\.q_proj\.", "mixer.q."),
    (r"^attention\.o_proj\.", "mixer.proj."),
    (r"^attention\.sequence_reduction\.sequence_reduction\.", "mixer.sr."),
    (r"^attention\.sequence_reduction\.layer_norm\.", "mixer.sr_norm."),
    (r"^layernorm_after\.", "ffn.norm."),
    (r"^mlp\.(fc1|fc2)\.", r"ffn.\1."),
    (r"^mlp\.dwconv\.dwconv\.", "ffn.dwconv."),
]
_TOP_RULES = [
    (r"^segformer\.stages\.(\d+)\.patch_embeddings\.proj\.", r"encoder.stages.\1.downsample.proj."),
    (r"^segformer\.stages\.(\d+)\.patch_embeddings\.layer_norm\.", r"encoder.stages.\1.downsample.norm."),
    (r"^segformer\.stages\.(\d+)\.layer_norm\.", r"encoder.stages.\1.norm."),
    (r"^decode_head\.linear_projections\.(\d+)\.proj\.", r"decoder.proj.\1."),
    (r"^decode_head\.linear_fuse\.", "decoder.fuse."),
    (r"^decode_head\.batch_norm\.", "decoder.norm."),
    (r"^decode_head\.classifier\.", "decoder.classifier."),
]


def is_hf_segformer_state(sd: dict) -> bool:
    return "decode_head.linear_fuse.weight" in sd and any(k.startswith("segformer.") for k in sd)


def to_v5_names(sd: dict) -> dict:
    out = {}
    for k, v in sd.items():
        for pat, rep in _V4_TO_V5:
            k = re.sub(pat, rep, k)
        out[k] = v
    return out


def infer_segformer_config(sd: dict) -> dict:
    """Architecture from the tensors (``transformers`` 5 names); heads (1, 2, 5, 8) and strides (4, 2, 2, 2) are
    not stored and are SegFormer's."""
    n = stage_count(sd, "segformer.stages.")
    dims = tuple(sd[f"segformer.stages.{i}.layer_norm.weight"].shape[0] for i in range(n))
    sr = "segformer.stages.{}.blocks.0.attention.sequence_reduction.sequence_reduction.weight"
    emb = "segformer.stages.{}.patch_embeddings.proj.weight"
    return dict(
        embed_dims=dims, depths=stage_depths(sd, "segformer.stages.{}.blocks.", n), num_heads=(1, 2, 5, 8)[:n],
        sr_ratios=tuple(sd[sr.format(i)].shape[-1] if sr.format(i) in sd else 1 for i in range(n)),
        mlp_ratios=tuple(sd[f"segformer.stages.{i}.blocks.0.mlp.fc1.weight"].shape[0] / dims[i] for i in range(n)),
        patch_sizes=tuple(sd[emb.format(i)].shape[-1] for i in range(n)), strides=(4, 2, 2, 2)[:n],
        in_chans=sd[emb.format(0)].shape[1], num_classes=sd["decode_head.classifier.weight"].shape[0],
        decoder_dim=sd["decode_head.linear_fuse.weight"].shape[0], norm_eps=1e-5,
        img_size=(512, 512),
    )


def convert_segformer_state(sd: dict) -> tuple[dict, list[str]]:
    """``transformers`` 5 names -> ours; ``k_proj`` and ``v_proj`` become one ``kv``."""
    out, unknown, kv = {}, [], {}
    for k, v in sd.items():
        if k.endswith("num_batches_tracked") and k.startswith("decode_head.batch_norm"):
            out["decoder.norm.num_batches_tracked"] = v
            continue
        m = re.match(r"^segformer\.stages\.(\d+)\.blocks\.(\d+)\.(.*)$", k)
        if m:
            prefix = f"encoder.stages.{m.group(1)}.blocks.{m.group(2)}."
            rest = m.group(3)
            kvm = re.match(r"^attention\.([kv])_proj\.(weight|bias)$", rest)
            if kvm:
                kv.setdefault(f"{prefix}mixer.kv.{kvm.group(2)}", {})[kvm.group(1)] = v
                continue
            new = mit_block_rule(_BLOCK_RULES, rest)
            if new is None:
                unknown.append(k)
            else:
                out[prefix + new] = v
            continue
        new = rename_key(k, _TOP_RULES)
        if new is None:
            unknown.append(k)
        else:
            out[new] = v
    for name, parts in kv.items():
        if set(parts) != {"k", "v"}:
            unknown.append(f"{name} (only the {''.join(parts)} projection)")
            continue
        out[name] = torch.cat([parts["k"], parts["v"]], dim=0)
    return out, unknown


@register_converter("Hugging Face SegFormer", priority=80)
def hf_segformer(container: dict, sd: dict, overrides: dict) -> Detected | None:
    """Heads per stage are not stored: SegFormer's 1, 2, 5, 8 unless ``num_heads=`` is given."""
    if not is_hf_segformer_state(sd):
        return None
    sd = to_v5_names(sd)
    conv, unknown = convert_segformer_state(sd)
    cfg = infer_segformer_config(sd)
    return Detected("hf-segformer", "segformer", cfg, conv, unknown=unknown, assumed=assumed_heads(
        "a Hugging Face SegFormer state dict", cfg["num_heads"], "SegFormer's heads per stage"))
