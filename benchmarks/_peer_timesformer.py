"""Import the official TimeSformer (facebookresearch/TimeSformer) from a source checkout at run time.

Nothing is vendored and nothing is written into the checkout. The official package cannot be
imported as-is on current PyTorch, so :func:`import_official_vit` patches ``sys.modules``:

- bare package stubs for ``timesformer`` and ``timesformer.models`` (their ``__init__``s pull in
  the environment setup, configs and the ResNet/SlowFast builders);
- a shim for the removed ``torch._six`` (``container_abcs``, ``string_classes``, ``int_classes``);
- ``fvcore.common.registry.Registry`` (used only to register model classes): the real fvcore
  when it is installed, otherwise a minimal stand-in with the same ``register``/``get`` API.

``build_official_timesformer`` constructs ``timesformer.models.vit.VisionTransformer`` directly
with the settings of the official ``TimeSformer`` wrapper (which hard-codes ViT-B and downloads
ImageNet weights).
"""

from __future__ import annotations

import collections.abc
import importlib
import sys
import types
from functools import partial
from pathlib import Path

from torch import nn

ATTENTION_NAMES = {"divided": "divided_space_time", "joint": "joint_space_time", "space_only": "space_only"}


class _Registry:
    """Minimal stand-in for ``fvcore.common.registry.Registry``: a name -> object map with a decorator."""

    def __init__(self, name: str):
        self._name = name
        self._obj_map: dict[str, object] = {}

    def register(self, obj=None):
        def deco(o):
            self._obj_map[o.__name__] = o
            return o

        return deco if obj is None else deco(obj)

    def get(self, name: str):
        if name not in self._obj_map:
            raise KeyError(f"no object named {name!r} in registry {self._name!r}")
        return self._obj_map[name]


def _package_stub(name: str, path: Path) -> None:
    if not path.is_dir():
        raise FileNotFoundError(f"{path} does not exist: is --timesformer-src a TimeSformer checkout?")
    mod = types.ModuleType(name)
    mod.__path__ = [str(path)]
    sys.modules[name] = mod


def _install_shims(src: Path) -> str:
    """Put the stubs into ``sys.modules``; returns which fvcore was used."""
    import torch

    six = types.ModuleType("torch._six")
    six.container_abcs = collections.abc
    six.string_classes = str
    six.int_classes = int
    six.inf = float("inf")
    sys.modules["torch._six"] = six
    torch._six = six
    try:
        import fvcore.common.registry  # noqa: F401

        fvcore_used = "fvcore"
    except ImportError:
        for name in ("fvcore", "fvcore.common"):
            sys.modules[name] = types.ModuleType(name)
        reg = types.ModuleType("fvcore.common.registry")
        reg.Registry = _Registry
        sys.modules["fvcore.common.registry"] = reg
        fvcore_used = "stand-in Registry (fvcore not installed)"
    _package_stub("timesformer", src / "timesformer")
    _package_stub("timesformer.models", src / "timesformer" / "models")
    return fvcore_used


def import_official_vit(src: str | Path) -> types.ModuleType:
    """``timesformer.models.vit`` from the checkout at ``src`` (the folder holding ``timesformer/``)."""
    src = Path(src).expanduser().resolve()
    if "timesformer.models.vit" in sys.modules:
        return sys.modules["timesformer.models.vit"]
    used = _install_shims(src)
    vit = importlib.import_module("timesformer.models.vit")
    vit.FVCORE_USED = used
    return vit


def build_official_timesformer(
    src: str | Path,
    attention: str = "divided",
    img_size: int = 112,
    num_frames: int = 8,
    embed_dim: int = 384,
    depth: int = 12,
    num_heads: int = 6,
    num_classes: int = 400,
    drop_path_rate: float = 0.1,
) -> nn.Module:
    """Official ``VisionTransformer``, ``TimeSformer``-wrapper settings; ``(B, 3, T, H, W) -> (B, classes)``.

    Defaults are ViT-S 8x112: patch 16, qkv_bias, LayerNorm eps 1e-6, mlp 4, 400 classes.
    """
    vit = import_official_vit(src)
    return vit.VisionTransformer(
        img_size=img_size,
        patch_size=16,
        num_classes=num_classes,
        embed_dim=embed_dim,
        depth=depth,
        num_heads=num_heads,
        mlp_ratio=4,
        qkv_bias=True,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=drop_path_rate,
        num_frames=num_frames,
        attention_type=ATTENTION_NAMES.get(attention, attention),
    )
