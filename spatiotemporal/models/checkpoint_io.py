"""Our own weight files: safetensors weights plus a JSON config (in the file's metadata and beside it)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save
from torch import nn

from ..utils.atomic import atomic_write, atomic_write_text
from .registry import model_arch

META_KEY = "spatiotemporal"
FORMAT_VERSION = 1


def model_spec(model: nn.Module) -> dict:
    """``{"arch", "config", "format_version"}``: everything needed to rebuild ``model``."""
    return {"arch": model_arch(model), "config": model.config_dict(), "format_version": FORMAT_VERSION}


def save_pretrained(model: nn.Module, path: str | os.PathLike) -> Path:
    """Write ``path`` (``.safetensors``) and ``path.json``, each atomically. Returns the weights path."""
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors") if path.suffix else path / "model.safetensors"
    spec = model_spec(model)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda f: f.write(save(state, metadata={META_KEY: json.dumps(spec)})))
    atomic_write_text(path.with_suffix(".json"), json.dumps(spec, indent=2))
    return path


def read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict | None]:
    """Weights and our spec (from the metadata, else from the JSON beside the file, else None)."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        state = {k: f.get_tensor(k) for k in f.keys()}
    if META_KEY in meta:
        return state, json.loads(meta[META_KEY])
    side = path.with_suffix(".json")
    return state, json.loads(side.read_text()) if side.exists() else None
