"""Our own weight files and the self-describing spec every checkpoint carries.

The spec (``format_version`` 2) holds what rebuilds the model (``arch``, ``config``) and what its users need:
``modality``, ``model_name``, ``data`` (the data / preprocessing section of the recipe it was trained with) and
``class_names`` -- like timm's ``pretrained_cfg`` or the inference section of a MONAI bundle. It sits in the
safetensors metadata (and a JSON file beside it) and in every training checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import nn

from ..utils.atomic import atomic_write, atomic_write_text
from ._registry import model_arch
from .convert import CheckpointFormatError

META_KEY = "spatiotemporal"
FORMAT_VERSION = 2


def model_spec(model: nn.Module, data: dict | None = None, class_names: list[str] | None = None) -> dict:
    """Everything needed to rebuild and use ``model``; ``data`` / ``class_names`` default to what the model
    was loaded with (``model.pretrained_cfg``)."""
    pre = getattr(model, "pretrained_cfg", None) or {}
    return {
        "format_version": FORMAT_VERSION,
        "arch": model_arch(model),
        "modality": type(model).modality,
        "model_name": getattr(model, "model_name", None) or pre.get("model_name"),
        "config": model.config_dict(),
        "data": dict(data if data is not None else pre.get("data") or {}),
        "class_names": list(class_names if class_names is not None else pre.get("class_names") or []),
    }


def upgrade_spec(spec: dict) -> dict:
    """A spec of any format version -> version 2. Version 1 had no ``data``/``modality``, and its TimeSformer
    configs named the mixer ``attention``, with ``space_only`` meaning the official framewise model."""
    spec = dict(spec)
    version = int(spec.get("format_version", 1))
    if version >= FORMAT_VERSION:
        return spec
    cfg = dict(spec.get("config") or {})
    if spec.get("arch") == "timesformer" and "attention" in cfg:
        attention = cfg.pop("attention")
        cfg["mixer"], cfg["framewise"] = ("joint", True) if attention == "space_only" else (attention, False)
    spec.update(config=cfg, format_version=FORMAT_VERSION, legacy_version=version)
    spec.setdefault("data", {})
    spec.setdefault("class_names", [])
    return spec


def save_pretrained(model: nn.Module, path: str | os.PathLike, data: dict | None = None,
                    class_names: list[str] | None = None) -> Path:
    """Write ``path`` (``.safetensors``) and ``path.json`` (the spec), each atomically. Returns the weights path."""
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors") if path.suffix else path / "model.safetensors"
    spec = model_spec(model, data, class_names)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda f: f.write(save(state, metadata={META_KEY: json.dumps(spec)})))
    atomic_write_text(path.with_suffix(".json"), json.dumps(spec, indent=2))
    return path


def read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict | None]:
    """Weights and our spec (from the metadata, else from the JSON beside the file, else None)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointFormatError(f"{path}: not a readable safetensors file ({str(e).splitlines()[0]}); "
                                    "is it truncated or another format?") from e
    side = path.with_suffix(".json")
    where, text = (f"{path} (metadata)", meta[META_KEY]) if META_KEY in meta else (str(side), None)
    if text is None and not side.exists():
        return state, None
    try:
        return state, json.loads(text if text is not None else side.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointFormatError(f"{where}: the model spec is not valid JSON ({e})") from e
