"""``load_pretrained``: detect a checkpoint's format and return a ready model in eval mode.

Reads official TimeSformer ``.pyth`` files, MONAI UNETR state dicts (0.7 to 1.6), timm and
facebookresearch/deit ViT / DeiT III weights, and our own safetensors + JSON files and training
checkpoints. Files are read with ``weights_only=True``. Known dead keys are dropped; any other
missing or unused key is an error that names it.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
from pathlib import Path

import torch
from torch import nn

from ..layers import resize_pos_embed_2d, resize_pos_embed_3d, resize_time_embed
from .checkpoint_io import read_safetensors
from .convert.monai_unetr import convert_unetr_state, infer_unetr_config, is_monai_unetr_state
from .convert.official_timesformer import convert_timesformer_state, infer_timesformer_config
from .convert.timm_vit import convert_vit_state, infer_vit_config, is_vit_state
from .convert.vit_keys import strip_prefix
from .registry import build_model, model_entry

log = logging.getLogger("spatiotemporal.models")


class CheckpointFormatError(ValueError):
    """The file is not a checkpoint layout we know, or does not fit the model it describes."""


def read_checkpoint(src) -> tuple[dict, dict | None, str]:
    """``(container or state dict, our spec or None, a name for messages)``; weights-only, no pickles."""
    if isinstance(src, dict):
        return src, _spec_of(src), "<dict>"
    path = Path(os.fspath(src))
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        state, spec = read_safetensors(path)
        return state, spec, str(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as e:
        raise CheckpointFormatError(
            f"{path}: cannot be read as a weights-only checkpoint ({type(e).__name__}: {str(e).splitlines()[0]}). "
            "spatiotemporal never unpickles arbitrary objects; re-save the file's state_dict with torch.save."
        ) from e
    if not isinstance(obj, dict):
        raise CheckpointFormatError(f"{path}: expected a dict of tensors, got {type(obj).__name__}")
    return obj, _spec_of(obj), str(path)


def _spec_of(obj: dict) -> dict | None:
    """Our model spec: in a ``spatiotemporal`` entry, or in a training checkpoint's task state."""
    if isinstance(obj.get("spatiotemporal"), dict):
        return obj["spatiotemporal"]
    task = obj.get("task")
    if isinstance(task, dict) and isinstance(task.get("model_spec"), dict):
        return task["model_spec"]
    return None


def _tensors(d: dict) -> dict[str, torch.Tensor]:
    return {k: v for k, v in d.items() if isinstance(v, torch.Tensor)}


def detect(obj: dict, spec: dict | None, name: str, overrides: dict):
    """Return ``(format, arch, config dict, converted state, dropped dead keys, unknown keys)``."""
    if spec is not None:  # our own: safetensors + JSON, or a training checkpoint
        state = obj.get("model", obj) if "model" in obj and isinstance(obj["model"], dict) else obj
        return "spatiotemporal", spec["arch"], dict(spec["config"]), _tensors(strip_prefix(state, "module.")), [], []
    if "model_state" in obj:  # PySlowFast / official TimeSformer .pyth
        sd = strip_prefix(strip_prefix(_tensors(obj["model_state"]), "module."), "model.")
        cfg = infer_timesformer_config(sd, obj.get("cfg"))
        conv, unknown = convert_timesformer_state(sd)
        return "official-timesformer", "timesformer", cfg, conv, [], unknown
    for key in ("model", "state_dict", "model_ema"):
        if key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    sd = strip_prefix(_tensors(obj), "module.")
    if any(k.startswith("encoder.blocks.") for k in sd):
        if "model" not in overrides:
            raise CheckpointFormatError(
                f"{name}: spatiotemporal weights without a config; pass model='<registered name>' "
                "or save with spatiotemporal.save_pretrained")
        entry = model_entry(overrides["model"])
        return "spatiotemporal", entry.arch, dict(entry.defaults), sd, [], []
    if is_monai_unetr_state(sd):
        patch = int(overrides.get("patch_size", 16))
        cfg = infer_unetr_config(sd, patch)
        if "img_size" not in cfg and "img_size" not in overrides:
            n = sd["vit.patch_embedding.position_embeddings"].shape[1]
            raise CheckpointFormatError(
                f"{name}: MONAI UNETR with {n} patch tokens is not a cube; pass img_size=(H, W, D)")
        return "monai-unetr", "unetr", cfg, sd, [], []
    if "blocks.0.temporal_attn.qkv.weight" in sd or "time_embed" in sd:
        cfg = infer_timesformer_config(sd)
        conv, unknown = convert_timesformer_state(sd)
        return "official-timesformer", "timesformer", cfg, conv, [], unknown
    if is_vit_state(sd):
        conv, unknown = convert_vit_state(sd)
        return "timm-vit", "vit", infer_vit_config(sd), conv, [], unknown
    sample = ", ".join(list(sd)[:6])
    raise CheckpointFormatError(
        f"{name}: unknown checkpoint format (first keys: {sample}). Known: official TimeSformer .pyth, "
        "MONAI UNETR, timm/DeiT ViT, spatiotemporal safetensors+JSON or training checkpoints.")


def _grid_of(cfg: dict, arch: str) -> tuple[int, ...]:
    """The token grid a config describes: ``(h, w)`` for ViT / TimeSformer, ``(a, b, c)`` for UNETR."""
    size, p = cfg.get("img_size"), int(cfg.get("patch_size", 16))
    if arch == "unetr":
        size = tuple(size) if isinstance(size, (list, tuple)) else (size,) * 3
        return tuple(int(s) // p for s in size)
    return (int(size) // p,) * 2


def _resize_embeddings(model: nn.Module, sd: dict, src_cfg: dict) -> None:
    """Resize ``pos_embed`` / ``time_embed`` of the checkpoint (grid of ``src_cfg``) to the model's grid."""
    own = model.state_dict()
    cfg = model.cfg
    if "time_embed" in sd and "time_embed" in own and sd["time_embed"].shape != own["time_embed"].shape:
        sd["time_embed"] = resize_time_embed(sd["time_embed"], own["time_embed"].shape[1], cfg.time_interp)
    if "pos_embed" not in sd or sd["pos_embed"].shape == own["pos_embed"].shape:
        return
    pe, old = sd["pos_embed"], _grid_of(src_cfg, model.arch)
    if model.arch == "unetr":
        if math.prod(old) != pe.shape[1]:
            raise CheckpointFormatError(f"position embedding has {pe.shape[1]} tokens, not the grid {old}")
        sd["pos_embed"] = resize_pos_embed_3d(pe, old, model.grid_size, 0, cfg.pos_interp)
        return
    prefix = pe.shape[1] - old[0] * old[1]
    new_prefix = own["pos_embed"].shape[1] - model.grid_size[0] * model.grid_size[1]
    if prefix != new_prefix:
        raise CheckpointFormatError(f"position embedding has {prefix} prefix slots, the model {new_prefix}")
    sd["pos_embed"] = resize_pos_embed_2d(pe, old, model.grid_size, prefix, cfg.pos_interp)


def load_state_strict(model: nn.Module, sd: dict, name: str, allow_missing: tuple[str, ...] = ()) -> None:
    """``load_state_dict(strict=True)`` with an error that lists missing, unused and mis-shaped keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in sd and not k.startswith(allow_missing)]
    unused = [k for k in sd if k not in own]
    shapes = [f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
              for k in sd if k in own and sd[k].shape != own[k].shape]
    if missing or unused or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys {missing}")
        if unused:
            parts.append(f"unused keys {unused}")
        if shapes:
            parts.append(f"shape mismatches {shapes}")
        raise CheckpointFormatError(f"{name}: checkpoint does not fit {type(model).__name__}: " + "; ".join(parts))
    model.load_state_dict({**{k: own[k] for k in own if k not in sd}, **sd}, strict=True)


def load_pretrained(src, **overrides) -> nn.Module:
    """Load any supported checkpoint (path or state dict) and return the model in eval mode.

    ``overrides`` change the architecture config (e.g. ``num_heads=16``, ``num_frames=16``,
    ``img_size=384``; embeddings are resized) or replace the head (``num_classes=N`` different from
    the checkpoint's: the head is re-initialised and logged). ``model=NAME`` names the config of
    bare spatiotemporal state dicts.
    """
    obj, spec, name = read_checkpoint(src)
    fmt, arch, cfg, sd, dropped, unknown = detect(obj, spec, name, overrides)
    if unknown:
        raise CheckpointFormatError(f"{name}: keys not understood for {fmt}: {unknown}")
    overrides = {k: v for k, v in overrides.items() if k != "model"}
    head_key, head_prefix = ("out_channels", "out.") if arch == "unetr" else ("num_classes", "head.")
    reset_head = head_key in overrides and overrides[head_key] != cfg.get(head_key, overrides[head_key])
    model = build_model(arch, {**cfg, **overrides})
    if fmt == "monai-unetr":
        sd, unknown, dropped = convert_unetr_state(sd, set(model.state_dict()), model.cfg.patch_size)
        if unknown:
            raise CheckpointFormatError(f"{name}: keys not understood for {fmt}: {unknown}")
    if dropped:
        log.info("%s: dropped %d dead keys of %s: %s", name, len(dropped), fmt, dropped)
    allow = ()
    if reset_head:
        sd = {k: v for k, v in sd.items() if not k.startswith(head_prefix)}
        allow = (head_prefix,)
        log.info("%s: head replaced (%s -> %s classes)", name, cfg.get(head_key), overrides[head_key])
    _resize_embeddings(model, sd, cfg)
    load_state_strict(model, sd, name, allow)
    model.source_format = fmt
    return model.eval()
