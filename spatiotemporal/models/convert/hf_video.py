"""Hugging Face ``transformers`` folders (``config.json`` + ``model.safetensors``) of
``TimesformerForVideoClassification`` and ``VideoMAEForVideoClassification`` -> our TimeSformer / VideoMAE.

``read_checkpoint`` puts the folder's ``config.json`` (and ``preprocessor_config.json`` when present) under
``container["transformers_config"]`` / ``["transformers_preprocessor"]``; the architecture comes from there,
the class names from its ``id2label``. Nothing is downloaded.
"""

from __future__ import annotations

import re

import torch

from . import Detected, register_converter

CONFIG_KEY = "transformers_config"
TIME_EMBED_KEY = "timesformer.embeddings.time_embeddings"
PREPROCESSOR_KEY = "transformers_preprocessor"

#: transformers' attention type -> our mixer (the framewise ``space_only`` variant is not supported: transformers
#: gives one logit row per frame for it, without the official time averaging).
HF_TIMESFORMER_ATTENTION = {"divided_space_time": "divided", "joint_space_time": "joint"}

_LAYER = r"^(?:timesformer|videomae)\.encoder\.layer\.(\d+)\."
_BLOCK_RULES = [  # part after "encoder.layer.{i}." -> part after "encoder.blocks.{i}."
    (r"^layernorm_before\.", "mixer.norm."),
    (r"^attention\.output\.dense\.", "mixer.attn.proj."),
    (r"^attention\.attention\.qkv\.", "mixer.attn.qkv."),
    (r"^temporal_layernorm\.", "mixer.temporal_norm."),
    (r"^temporal_attention\.attention\.qkv\.", "mixer.temporal_attn.qkv."),
    (r"^temporal_attention\.output\.dense\.", "mixer.temporal_attn.proj."),
    (r"^temporal_dense\.", "mixer.temporal_fc."),
    (r"^layernorm_after\.", "ffn.norm."),
    (r"^intermediate\.dense\.", "ffn.fc1."),
    (r"^output\.dense\.", "ffn.fc2."),
]
_TOP_RULES = {
    "timesformer.embeddings.cls_token": "cls_token",
    "timesformer.embeddings.position_embeddings": "pos_embed",
    "timesformer.embeddings.time_embeddings": "time_embed",
    "timesformer.embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
    "timesformer.embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
    "timesformer.layernorm.weight": "norm.weight",
    "timesformer.layernorm.bias": "norm.bias",
    "videomae.embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
    "videomae.embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
    "fc_norm.weight": "fc_norm.weight",
    "fc_norm.bias": "fc_norm.bias",
    "classifier.weight": "head.weight",
    "classifier.bias": "head.bias",
}


def _fuse_qkv(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """VideoMAE's separate ``query`` / ``key`` / ``value`` (no key bias; the biases stored as ``q_bias`` /
    ``v_bias`` as on the Hub, or ``query.bias`` / ``value.bias``) -> one ``qkv`` (key bias zero)."""
    out = dict(sd)
    for k in [k for k in sd if k.endswith("attention.attention.query.weight")]:
        p = k[: -len("query.weight")]
        out[p + "qkv.weight"] = torch.cat([out.pop(p + n + ".weight") for n in ("query", "key", "value")])
        for q_name, v_name in (("q_bias", "v_bias"), ("query.bias", "value.bias")):
            if p + q_name in sd:
                q, v = out.pop(p + q_name), out.pop(p + v_name)
                out[p + "qkv.bias"] = torch.cat([q, torch.zeros_like(q), v])
    return out


def convert_hf_keys(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """transformers names -> ours. Returns (converted, keys no rule knew)."""
    out, unknown = {}, []
    for k, v in _fuse_qkv(sd).items():
        m = re.match(_LAYER, k)
        if m:
            rest = k[m.end():]
            for pat, rep in _BLOCK_RULES:
                if re.search(pat, rest):
                    out[f"encoder.blocks.{m.group(1)}.{re.sub(pat, rep, rest)}"] = v
                    break
            else:
                unknown.append(k)
        elif k in _TOP_RULES:
            out[_TOP_RULES[k]] = v
        else:
            unknown.append(k)
    return out, unknown


def class_names_from(cfg: dict) -> list[str]:
    """``id2label`` in label order (transformers writes ``LABEL_i`` when a model has no names)."""
    id2label = cfg.get("id2label") or {}
    return [str(id2label.get(str(i), id2label.get(i, i))) for i in range(len(id2label))]


def _one(value, what: str) -> int:
    """transformers allows ``int`` or a pair for sizes; ours are square."""
    if isinstance(value, (list, tuple)):
        if len(set(value)) != 1:
            raise ValueError(f"config.json {what} {value} is not square; square inputs only")
        value = value[0]
    return int(value)


def _common(cfg: dict, pre: dict, sd: dict, name: str) -> dict:
    if cfg.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"config.json hidden_act {cfg.get('hidden_act')!r}: only 'gelu' is supported")
    dim = int(cfg["hidden_size"])
    out = dict(img_size=_one(cfg.get("image_size", 224), "image_size"), patch_size=_one(cfg.get("patch_size", 16),
               "patch_size"), in_chans=int(cfg.get("num_channels", 3)), embed_dim=dim,
               depth=int(cfg["num_hidden_layers"]), num_heads=int(cfg["num_attention_heads"]),
               mlp_ratio=int(cfg["intermediate_size"]) / dim, norm_eps=float(cfg.get("layer_norm_eps", 1e-12)),
               num_classes=sd["classifier.weight"].shape[0] if "classifier.weight" in sd else 0,
               num_frames=int(cfg.get("num_frames", 8)))
    if pre.get("image_mean") and pre.get("image_std"):
        out.update(mean=tuple(float(v) for v in pre["image_mean"]), std=tuple(float(v) for v in pre["image_std"]))
    return out


def _frames_of_the_weights(cfg: dict, sd: dict, config: dict) -> dict[str, str]:
    """The TimeSformer's frame count is its time embedding's length: a ``config.json`` that says otherwise is
    overruled by the weights (``config["num_frames"]`` set in place), with a note for the WARNING."""
    te = sd.get(TIME_EMBED_KEY)
    if te is None or te.ndim != 3 or te.shape[1] == config["num_frames"]:
        return {}
    frames, config["num_frames"] = config["num_frames"], int(te.shape[1])
    if "num_frames" not in cfg:  # not stated: the weights tell, nothing is guessed
        return {}
    return {"num_frames": f"config.json says num_frames {frames}, but {TIME_EMBED_KEY} holds {te.shape[1]} frames: "
                          f"built as the weights' {te.shape[1]}-frame model; pass num_frames={frames} to resize the "
                          f"time embedding to {frames} frames"}


@register_converter("transformers TimesformerForVideoClassification / VideoMAEForVideoClassification folder",
                    priority=5)
def hf_video(container: dict, sd: dict, overrides: dict) -> Detected | None:
    cfg = container.get(CONFIG_KEY)
    if not isinstance(cfg, dict):
        return None
    kind, pre = cfg.get("model_type"), container.get(PREPROCESSOR_KEY) or {}
    name = f"config.json ({'/'.join(cfg.get('architectures') or [kind or '?'])})"
    meta = {"class_names": class_names_from(cfg)} if cfg.get("id2label") else {}
    conv, unknown = convert_hf_keys(sd)
    if kind == "timesformer":
        attention = cfg.get("attention_type", "divided_space_time")
        if attention not in HF_TIMESFORMER_ATTENTION:
            raise ValueError(f"{name}: attention_type {attention!r} is not supported (known: "
                             f"{', '.join(HF_TIMESFORMER_ATTENTION)})")
        config = dict(_common(cfg, pre, sd, name), qkv_bias=bool(cfg.get("qkv_bias", True)),
                      mixer=HF_TIMESFORMER_ATTENTION[attention], pos_interp="nearest", time_interp="nearest")
        return Detected("transformers-timesformer", "timesformer", config, conv, unknown=unknown, meta=meta,
                        assumed=_frames_of_the_weights(cfg, sd, config))
    if kind == "videomae":
        if not cfg.get("use_mean_pooling", True):
            raise ValueError(f"{name}: use_mean_pooling false (a final norm and the first token) is not supported; "
                             "VideoMAE classifiers pool by the mean")
        config = dict(_common(cfg, pre, sd, name), tubelet_size=int(cfg.get("tubelet_size", 2)),
                      qkv_bias=bool(cfg.get("qv_bias", True)))
        if not config["qkv_bias"]:
            conv = {k: v for k, v in conv.items() if not k.endswith("qkv.bias")}
        return Detected("transformers-videomae", "videomae", config, conv, unknown=unknown, meta=meta)
    raise ValueError(f"{name}: model_type {kind!r} is not a transformers layout spatiotemporal reads "
                     "(timesformer, videomae)")
