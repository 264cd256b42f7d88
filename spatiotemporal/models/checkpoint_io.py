"""Our own weight files and the self-describing spec every checkpoint carries.

The spec (``format_version`` 3) holds what rebuilds the model (``arch``, ``config``) and what its users need:
``modality``, ``model_name``, ``preprocessing`` (the preprocessing spec, ``models/preprocessing.py``: the recipe
keys that turn an input file into the model's input, with a ``version`` of its own), ``class_names`` and, when it
comes from a training run, ``metrics`` -- like timm's ``pretrained_cfg`` or the inference section of a MONAI bundle.
It sits in the safetensors metadata (and a JSON file beside it) and in every training checkpoint. It holds no path
of the machine that wrote it, no cache or augmentation setting: files meant for sharing hold nothing else.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import nn

from ..utils.atomic import atomic_write, atomic_write_text
from ._registry import model_arch
from .convert import CheckpointFormatError
from .preprocessing import PREPROCESSING_VERSION, check_finite, check_version, from_recipe_data, upgrade_preprocessing

log = logging.getLogger("spatiotemporal.models")

META_KEY = "spatiotemporal"
FORMAT_VERSION = 3
SPEC_KEYS = ("format_version", "arch", "modality", "model_name", "config", "preprocessing", "class_names", "metrics")


def model_spec(model: nn.Module, preprocessing: dict | None = None, class_names: list[str] | None = None, *,
               metrics: dict | None = None) -> dict:
    """Everything needed to rebuild and use ``model``; ``preprocessing`` (a pipeline's ``preprocessing_spec``),
    ``class_names`` and ``metrics`` default to what the model was loaded with (``model.pretrained_cfg``)."""
    pre = getattr(model, "pretrained_cfg", None) or {}
    prep = preprocessing if preprocessing is not None else pre.get("preprocessing")
    metrics = metrics if metrics is not None else pre.get("metrics")
    spec = {
        "format_version": FORMAT_VERSION,
        "arch": model_arch(model),
        "modality": type(model).modality,
        "model_name": getattr(model, "model_name", None) or pre.get("model_name"),
        "config": model.config_dict(),
        "preprocessing": {**(prep or {}), "version": PREPROCESSING_VERSION},
        "class_names": list(class_names if class_names is not None else pre.get("class_names") or []),
    }
    return {**spec, "metrics": dict(metrics)} if metrics else spec


def shareable_spec(spec: Mapping) -> dict:
    """``spec`` with only the keys a shared file may hold (:data:`SPEC_KEYS`)."""
    return {k: spec[k] for k in SPEC_KEYS if k in spec}


def upgrade_spec(spec: dict, name: str = "the spec") -> dict:
    """A spec of any format version -> version 3, checked (``name`` names the file in errors and the warning).

    Version 1 had no ``data``/``modality``, and its TimeSformer configs named the mixer ``attention``, with
    ``space_only`` meaning the official framewise model. Version 2 stored the whole recipe ``data`` section: it is
    reduced to the modality's preprocessing keys (path-like values dropped), with one warning. Every number of
    the config and the preprocessing spec must be finite (a :class:`CheckpointFormatError` naming ``name`` and
    the key)."""
    if not isinstance(spec, Mapping):
        raise CheckpointFormatError(f"{name}: the stored spec is a {type(spec).__name__}; expected a mapping")
    spec = dict(spec)
    version = check_version(spec.get("format_version", 1), "format_version", "model spec format", FORMAT_VERSION,
                            name)
    if version < 2:
        cfg = dict(spec.get("config") or {})
        if spec.get("arch") == "timesformer" and "attention" in cfg:
            attention = cfg.pop("attention")
            cfg["mixer"], cfg["framewise"] = ("joint", True) if attention == "space_only" else (attention, False)
        spec["config"] = cfg
    if version < 3:
        data = spec.pop("data", None) or {}
        if not isinstance(data, Mapping):
            raise CheckpointFormatError(f"{name}: the stored spec's 'data' is a {type(data).__name__}; expected "
                                        "a mapping")
        spec["preprocessing"], dropped = from_recipe_data(spec.get("modality"), data)
        if data:
            log.warning("%s: a format-%d checkpoint: its stored data section is reduced to the preprocessing spec "
                        "(%d keys dropped: %s); re-save it (spatiotemporal.save_pretrained) to write format %d",
                        name, version, len(dropped), ", ".join(dropped), FORMAT_VERSION)
        spec.update(format_version=FORMAT_VERSION, legacy_version=version)
    spec["preprocessing"] = upgrade_preprocessing(spec.get("preprocessing"), name)
    spec.setdefault("class_names", [])
    check_finite({"config": spec.get("config")}, name)  # metrics may hold NaN (an organ absent from every case)
    return spec


def save_pretrained(model: nn.Module, path: str | os.PathLike, preprocessing: dict | None = None,
                    class_names: list[str] | None = None, *, metrics: dict | None = None) -> Path:
    """Write ``path`` (``.safetensors``) and ``path.json`` (the spec, :func:`model_spec`), each atomically.
    Returns the weights path."""
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors") if path.suffix else path / "model.safetensors"
    spec = model_spec(model, preprocessing, class_names, metrics=metrics)
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
