"""One registry of named model configurations: ``create_model(name, **overrides)``."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from .timesformer import TimeSformer, TimeSformerConfig
from .unetr import UNETR, UNETRConfig
from .vit import VisionTransformer, ViTConfig

ARCHS: dict[str, tuple[type[nn.Module], type]] = {
    "vit": (VisionTransformer, ViTConfig),
    "timesformer": (TimeSformer, TimeSformerConfig),
    "unetr": (UNETR, UNETRConfig),
}


@dataclass(frozen=True)
class ModelEntry:
    arch: str
    defaults: dict
    description: str


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, arch: str, description: str = "", **defaults) -> None:
    if arch not in ARCHS:
        raise KeyError(f"unknown architecture {arch!r}; known: {', '.join(ARCHS)}")
    _REGISTRY[name] = ModelEntry(arch, defaults, description)


def list_models(pattern: str = "") -> list[str]:
    return sorted(n for n in _REGISTRY if pattern in n)


def model_entry(name: str) -> ModelEntry:
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown model {name!r}.{hint} Registered: {', '.join(list_models())}")
    return _REGISTRY[name]


def build_config(arch: str, values: dict):
    """A config dataclass of ``arch`` from ``values``; unknown keys are an error listing the valid ones."""
    cfg_cls = ARCHS[arch][1]
    valid = [f.name for f in dataclasses.fields(cfg_cls)]
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise TypeError(f"unknown {arch} config key(s) {unknown}; valid keys: {', '.join(valid)}")
    vals = dict(values)
    for k in ("img_size", "mean", "std", "skips"):  # lists from JSON/YAML back to tuples
        if isinstance(vals.get(k), list):
            vals[k] = tuple(vals[k])
    return cfg_cls(**vals)


def build_model(arch: str, values: dict) -> nn.Module:
    """Instantiate ``arch`` from a config dict (e.g. one saved with a checkpoint)."""
    if arch not in ARCHS:
        raise KeyError(f"unknown architecture {arch!r}; known: {', '.join(ARCHS)}")
    model = ARCHS[arch][0](build_config(arch, values))
    model.arch = arch
    return model


def create_model(name: str, **overrides) -> nn.Module:
    """Build a registered model, e.g. ``create_model("timesformer_base", attention="joint", num_classes=10)``."""
    entry = model_entry(name)
    model = build_model(entry.arch, {**entry.defaults, **overrides})
    model.model_name = name
    return model


def model_arch(model: nn.Module) -> str:
    for arch, (cls, _) in ARCHS.items():
        if isinstance(model, cls):
            return arch
    raise TypeError(f"{type(model).__name__} is not a spatiotemporal model")


VIT_SIZES: dict[str, dict] = {
    "tiny": dict(embed_dim=192, depth=12, num_heads=3),
    "small": dict(embed_dim=384, depth=12, num_heads=6),
    "base": dict(embed_dim=768, depth=12, num_heads=12),
    "large": dict(embed_dim=1024, depth=24, num_heads=16),
    "huge": dict(embed_dim=1280, depth=32, num_heads=16, patch_size=14),
}

#: Heads of the standard config for a given width (for checkpoints that do not store it).
HEADS_FOR_WIDTH = {192: 3, 384: 6, 512: 8, 768: 12, 1024: 16, 1280: 16}


def _register_all(reg: Callable = register_model) -> None:
    for size, kw in VIT_SIZES.items():
        p = kw.get("patch_size", 16)
        reg(f"vit_{size}_patch{p}_224", "vit", f"ViT-{size[0].upper()}/{p} at 224", **kw)
        reg(f"deit3_{size}_patch{p}_224", "vit", f"DeiT III ViT-{size[0].upper()}/{p}: LayerScale 1e-4, no class "
            "position slot", no_embed_class=True, init_values=1e-4, **kw)
    reg("vit_small_patch16_gap_224", "vit", "ViT-S/16, global average pooling, no class token",
        class_token=False, global_pool="avg", fc_norm=True, **VIT_SIZES["small"])
    reg("vit_small_patch16_map_224", "vit", "ViT-S/16, MAP head, no class token",
        class_token=False, global_pool="map", **VIT_SIZES["small"])
    reg("vit_tiny_builtin", "vit", "CPU-sized ViT for the built-in image set (32 px, patch 8)",
        img_size=32, patch_size=8, embed_dim=128, depth=4, num_heads=4, num_classes=10,
        init_values=1e-4, no_embed_class=True, drop_path_rate=0.05)
    ts = dict(embed_dim=768, depth=12, num_heads=12, patch_size=16)
    reg("timesformer_base", "timesformer", "official TimeSformer 8x224 (divided)", img_size=224, num_frames=8, **ts)
    reg("timesformer_hr", "timesformer", "official TimeSformer-HR 16x448", img_size=448, num_frames=16, **ts)
    reg("timesformer_l", "timesformer", "official TimeSformer-L 96x224", img_size=224, num_frames=96, **ts)
    reg("timesformer_small", "timesformer", "ViT-S TimeSformer 8x112 for CPUs", img_size=112, num_frames=8,
        embed_dim=384, depth=12, num_heads=6, patch_size=16)
    reg("timesformer_tiny", "timesformer", "CPU-sized TimeSformer for the built-in video set (8x32, patch 8)",
        img_size=32, num_frames=8, embed_dim=128, depth=4, num_heads=4, patch_size=8, num_classes=8,
        drop_path_rate=0.0)
    reg("unetr_base", "unetr", "MONAI UNETR defaults (96^3 ROI, 14 classes)")
    reg("unetr_small", "unetr", "UNETR with a ViT-S-width encoder, 96^3", hidden_size=384, mlp_dim=1536,
        num_heads=6, feature_size=16)
    reg("unetr_tiny", "unetr", "CPU-sized UNETR for the built-in phantoms (patch 8, 6 layers)",
        img_size=(64, 64, 64), patch_size=8, hidden_size=128, mlp_dim=512, num_layers=6, num_heads=4,
        feature_size=8, out_channels=6)


_register_all()
