"""``load_pretrained``: detect a checkpoint's format and return a ready model in eval mode.

Reads our own safetensors + JSON files and training checkpoints (their spec rebuilds the model and says how
it was trained), and every layout a converter in ``models/convert/`` recognises: official TimeSformer ``.pyth``,
MONAI UNETR (0.7 to 1.6), timm / facebookresearch/deit ViT and DeiT III, ``transformers`` folders (``config.json`` +
``model.safetensors``) of TimeSformer and VideoMAE. Files are read with
``weights_only=True``. Known dead keys are dropped; any other missing or unused key is an error that names it.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

from ..utils.finite import non_finite
from ._registry import arch_class, build_model, model_entry, resolve_aliases
from .checkpoint_io import read_safetensors, upgrade_spec
from .convert import CheckpointFormatError, Detected, detect_format

log = logging.getLogger("spatiotemporal.models")


@dataclass
class CheckpointInfo:
    """A checkpoint read and recognised, before any model is built."""

    name: str
    detected: Detected
    spec: dict | None  # our spec (upgraded to the current version), None for foreign formats


def read_checkpoint(src) -> tuple[dict, dict | None, str]:
    """``(container or state dict, our spec or None, a name for messages)``; weights-only, no pickles."""
    if isinstance(src, dict):
        return src, _spec_of(src), "<dict>"
    path = Path(os.fspath(src))
    if path.is_dir() and (path / "config.json").is_file() and not (path / "model.json").is_file():
        return _read_transformers_folder(path)
    if path.is_dir():
        found = [p for p in (path / "model.safetensors", path / "checkpoints" / "best.pt",
                             path / "checkpoints" / "last.pt") if p.is_file()]
        if not found:
            raise FileNotFoundError(f"checkpoint not found: {path} is a folder without model.safetensors or "
                                    f"checkpoints/best.pt (expected a checkpoint file or a run folder)")
        if found[0].name != "model.safetensors":
            log.info("%s is a run folder: reading %s", path, found[0])
        path = found[0]
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        state, spec = read_safetensors(path)
        return state, spec, str(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except MemoryError:
        raise
    except Exception as e:  # torch raises many types for a foreign or damaged file (KeyError, OSError, ...)
        first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "")
        raise CheckpointFormatError(
            f"{path}: cannot be read as a weights-only checkpoint ({type(e).__name__}: {first}); is it truncated, "
            "another format, or a pickle with code in it? spatiotemporal never unpickles arbitrary objects: "
            "re-save the file's state_dict with torch.save"
        ) from e
    if not isinstance(obj, dict):
        raise CheckpointFormatError(f"{path}: expected a dict of tensors, got {type(obj).__name__}")
    return obj, _spec_of(obj), str(path)


def _read_transformers_folder(folder: Path) -> tuple[dict, None, str]:
    """A ``transformers`` ``save_pretrained`` folder: its weights with ``config.json`` (and
    ``preprocessor_config.json``) attached for the converters (``models/convert/hf_video.py``)."""
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"{folder}: has config.json but no model.safetensors (save with "
                                "save_pretrained(..., safe_serialization=True))")
    extra = {}
    for key, fname in (("transformers_config", "config.json"), ("transformers_preprocessor",
                                                                "preprocessor_config.json")):
        if (folder / fname).is_file():
            try:
                extra[key] = json.loads((folder / fname).read_text())
            except ValueError as e:
                raise CheckpointFormatError(f"{folder / fname}: not valid JSON ({e})") from e
    state, _ = read_safetensors(weights)
    return {**state, **extra}, None, str(folder)


def _spec_of(obj: dict) -> dict | None:
    """Our spec: a ``spatiotemporal`` entry, or a training checkpoint's task state (``spec``; the older
    ``model_spec`` + ``class_names``), with the run's ``metrics`` (its ``best`` and ``last_eval``) when it has
    none."""
    if isinstance(obj.get("spatiotemporal"), dict):
        return obj["spatiotemporal"]
    task, spec = obj.get("task"), None
    if isinstance(task, dict) and isinstance(task.get("spec"), dict):
        spec = task["spec"]
    elif isinstance(task, dict) and isinstance(task.get("model_spec"), dict):
        spec = {**task["model_spec"], "class_names": list(task.get("class_names") or [])}
    metrics = {k: obj[k] for k in ("best", "last_eval") if isinstance(obj.get(k), dict) and obj[k]}
    if spec is not None and metrics and "metrics" not in spec:
        spec = {**spec, "metrics": metrics}
    return spec


def _tensors(d: dict) -> dict[str, torch.Tensor]:
    return {k: v for k, v in d.items() if isinstance(v, torch.Tensor)}


def _state_of(obj: dict) -> dict[str, torch.Tensor]:
    """The tensors of a container (``model_state``, ``model``, ``state_dict``, ``model_ema`` or the dict itself),
    with DDP's ``module.`` removed."""
    for key in ("model_state", "model", "state_dict", "model_ema"):
        if isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    sd = _tensors(obj)
    consume_prefix_in_state_dict_if_present(sd, "module.")
    return sd


def inspect_checkpoint(src, overrides: dict | None = None) -> CheckpointInfo:
    """Read ``src`` (path or dict) and recognise it; ``overrides`` may carry what a format does not store."""
    overrides = overrides or {}
    obj, spec, name = read_checkpoint(src)
    sd = _state_of(obj)
    bad = non_finite(sd.items())
    if bad:
        raise CheckpointFormatError(
            f"{name}: {len(bad)} of {len(sd)} weight tensors hold NaN or infinite values ({_shown(bad)}): it was "
            "saved from a diverged model and would predict nonsense; use an earlier checkpoint")
    if spec is not None:
        spec = upgrade_spec(spec, name)
        return CheckpointInfo(name, Detected("spatiotemporal", spec["arch"], dict(spec["config"]), sd), spec)
    if any(k.startswith("encoder.blocks.") for k in sd):
        if "model" not in overrides:
            raise CheckpointFormatError(
                f"{name}: spatiotemporal weights without a config; pass model='<registered name>' "
                "or save with spatiotemporal.save_pretrained")
        entry = model_entry(overrides["model"])
        return CheckpointInfo(name, Detected("spatiotemporal", entry.arch, dict(entry.defaults), sd), None)
    return CheckpointInfo(name, detect_format(obj, sd, overrides, name), None)


def _shown(keys: list[str], n: int = 5) -> str:
    return ", ".join(keys[:n]) + (f" and {len(keys) - n} more" if len(keys) > n else "")


def load_state_strict(model: nn.Module, sd: dict, name: str, allow_missing: tuple[str, ...] = ()) -> None:
    """``load_state_dict(strict=True)`` with an error that lists missing, unused and mis-shaped keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in sd and not k.startswith(allow_missing)]
    unused = [k for k in sd if k not in own]
    shapes = [f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
              for k in sd if k in own and sd[k].shape != own[k].shape]
    ints = [f"{k} ({str(sd[k].dtype).removeprefix('torch.')})" for k in sd
            if k in own and own[k].is_floating_point() and not (sd[k].is_floating_point() or sd[k].is_complex())]
    if ints and not (missing or unused or shapes):
        raise CheckpointFormatError(
            f"{name}: {len(ints)} weight tensors are integers where {type(model).__name__} has floating-point "
            f"weights ({_shown(ints)}): cast to float they would be used as whole numbers (quantised or wrongly "
            "saved weights); save the floating-point weights")
    if missing or unused or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys ({_shown(missing)})")
        if unused:
            parts.append(f"{len(unused)} unused keys ({_shown(unused)})")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches ({_shown(shapes)})")
        raise CheckpointFormatError(f"{name}: checkpoint does not fit {type(model).__name__}: " + "; ".join(parts))
    model.load_state_dict({**{k: own[k] for k in own if k not in sd}, **sd}, strict=True)


def load_pretrained(src, **overrides) -> nn.Module:
    """Load any supported checkpoint (path, state dict, or a :class:`CheckpointInfo`) in eval mode.

    ``overrides`` change the architecture config (e.g. ``num_heads=16``, ``num_frames=16``, ``img_size=384``:
    embeddings are resized) or replace the head (``num_classes=N`` different from the checkpoint's: the head
    is re-initialised and logged). ``model=NAME`` names the config of bare spatiotemporal state dicts. The
    model's ``pretrained_cfg`` holds the checkpoint's ``preprocessing`` spec, ``class_names`` and ``metrics``
    (empty for foreign formats); ``source_format`` names the format.
    """
    overrides = resolve_aliases(overrides)
    info = src if isinstance(src, CheckpointInfo) else inspect_checkpoint(src, overrides)
    det, name = info.detected, info.name
    if det.unknown:
        raise CheckpointFormatError(f"{name}: keys not understood for {det.fmt}: {det.unknown}")
    overrides = {k: v for k, v in overrides.items() if k != "model"}
    for keys, note in det.assumed.items():  # what the format does not store, unless the caller set it
        if not set((keys,) if isinstance(keys, str) else keys) <= set(overrides):
            log.warning("%s: %s", name, note)
    cls = arch_class(det.arch)
    head_key, head_prefix = cls.head_key, cls.head_prefix
    reset_head = head_key in overrides and overrides[head_key] != det.config.get(head_key, overrides[head_key])
    model = build_model(det.arch, {**det.config, **overrides})
    own = model.state_dict()
    sd = dict(det.state)
    dropped = [k for k in sd if k not in own and any(re.search(p, k) for p in det.dead_keys)]
    for k in dropped:
        del sd[k]
    if dropped:
        log.info("%s: dropped %d dead keys of %s: %s", name, len(dropped), det.fmt, dropped)
    allow: tuple[str, ...] = ()
    if reset_head:
        sd = {k: v for k, v in sd.items() if not k.startswith(head_prefix)}
        allow = (head_prefix,)
        log.info("%s: head replaced (%s -> %s outputs)", name, det.config.get(head_key), overrides[head_key])
    model.resize_state_dict(sd, det.config, name)
    load_state_strict(model, sd, name, allow)
    model.source_format = det.fmt
    spec = info.spec or det.meta
    model.model_name = spec.get("model_name") or getattr(model, "model_name", None)
    model.pretrained_cfg = {k: spec[k] for k in ("preprocessing", "class_names", "model_name", "metrics",
                                                 "legacy_version") if k in spec}
    return model.eval()
