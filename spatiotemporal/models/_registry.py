"""Infrastructure: the registries of model families (archs) and named model configurations.

A model file declares its family with ``@register_arch`` on the class and its named variants with
``@register_model(ModelClass)`` on functions that return the variant's config values (timm's pattern: the
variants live next to their model). ``create_model(name, **overrides)`` builds one.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ..utils.errors import SpatioUserError, UnknownNameError, UnknownOptionError, UserInputError
from .validate import ModelConfigError

#: Config keys accepted under another name: ``attention`` is the historical name of the ``mixer`` slot.
CONFIG_ALIASES = {"attention": "mixer"}

ARCHS: dict[str, type[nn.Module]] = {}


@dataclass(frozen=True)
class ModelEntry:
    name: str
    arch: str
    defaults: dict
    description: str


_MODELS: dict[str, ModelEntry] = {}


def register_arch(cls: type[nn.Module]) -> type[nn.Module]:
    """Class decorator: make ``cls`` (with ``arch``, ``modality``, ``config_cls``) a model family."""
    for attr in ("arch", "modality", "config_cls"):
        if not hasattr(cls, attr):
            raise TypeError(f"{cls.__name__} must declare the class attribute {attr!r} to be registered")
    if cls.arch in ARCHS and ARCHS[cls.arch] is not cls:
        raise KeyError(f"arch {cls.arch!r} is registered twice ({ARCHS[cls.arch].__name__}, {cls.__name__})")
    ARCHS[cls.arch] = cls
    return cls


def register_model(cls: type[nn.Module]) -> Callable:
    """Decorator for ``def name() -> dict`` returning a variant's config values; its docstring describes it."""

    def deco(fn: Callable[[], dict]) -> Callable[[], dict]:
        name = fn.__name__
        if name in _MODELS:
            raise KeyError(f"model {name!r} is registered twice")
        defaults = dict(fn())
        build_config(cls.arch, defaults)  # a typo in a variant fails at import, not at first use
        _MODELS[name] = ModelEntry(name, cls.arch, defaults, (fn.__doc__ or "").strip().splitlines()[0]
                                   if fn.__doc__ else "")
        return fn

    return deco


def list_models(pattern: str = "") -> list[str]:
    return sorted(n for n in _MODELS if pattern in n)


def list_archs() -> list[str]:
    return sorted(ARCHS)


def arch_class(arch: str) -> type[nn.Module]:
    if arch not in ARCHS:
        raise UnknownNameError(f"unknown model family {arch!r}; known: {', '.join(sorted(ARCHS))}")
    return ARCHS[arch]


def model_entry(name: str) -> ModelEntry:
    if name not in _MODELS:
        close = difflib.get_close_matches(name, list(_MODELS) + list(ARCHS), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownNameError(f"unknown model {name!r}.{hint} See `spatio models` for the registered names")
    return _MODELS[name]


def resolve_aliases(values: dict) -> dict:
    """``attention=...`` -> ``mixer=...`` (an error if both are given with different values)."""
    out = dict(values)
    for old, new in CONFIG_ALIASES.items():
        if old in out:
            v = out.pop(old)
            if new in out and out[new] != v:
                raise UnknownOptionError(f"config keys {old!r} ({v!r}) and {new!r} ({out[new]!r}) name the same slot")
            out[new] = v
    return out


def build_config(arch: str, values: dict):
    """The config dataclass of ``arch`` from ``values``; unknown keys are an error listing the valid ones."""
    cfg_cls = arch_class(arch).config_cls
    vals = resolve_aliases(values)
    valid = [f.name for f in dataclasses.fields(cfg_cls)]
    unknown = sorted(set(vals) - set(valid))
    if unknown:
        hints = [m for k in unknown for m in difflib.get_close_matches(k, valid, n=1)]
        hint = f" Did you mean {hints}?" if hints else ""
        raise UnknownOptionError(f"unknown {arch} config key(s) {unknown}.{hint} Valid keys: {', '.join(valid)}")
    for k, v in vals.items():  # lists from JSON/YAML back to tuples (configs hold no lists)
        if isinstance(v, list):
            vals[k] = tuple(v)
    try:
        return cfg_cls(**vals)  # the config checks its values (models/validate.py) before any tensor exists
    except ModelConfigError as e:
        raise ModelConfigError(f"cannot build a {arch} model with this config: {e}") from e


def build_model(arch: str, values: dict) -> nn.Module:
    """Instantiate ``arch`` from a config dict (e.g. one saved with a checkpoint).

    Layers and models check their arguments with ``ValueError`` ("dim 128 is not divisible by num_heads 5"); here
    the values come from a recipe, a flag or a checkpoint, so such an error is the user's: it is re-raised as
    :class:`UserInputError` naming the family (other exception types are bugs and pass unchanged)."""
    cfg = build_config(arch, values)
    try:
        return arch_class(arch)(cfg)
    except ValueError as e:
        if isinstance(e, SpatioUserError):
            raise
        raise UserInputError(f"cannot build a {arch} model with this config: {e}") from e


def create_model(name: str, **overrides) -> nn.Module:
    """Build a registered model, e.g. ``create_model("timesformer_base", mixer="joint", num_classes=10)``.

    ``name`` may also be a family (``"timesformer"``): its config's defaults."""
    if name in ARCHS and name not in _MODELS:
        model = build_model(name, overrides)
    else:
        entry = model_entry(name)
        model = build_model(entry.arch, {**entry.defaults, **resolve_aliases(overrides)})
    model.model_name = name
    return model


def model_arch(model: nn.Module) -> str:
    arch = getattr(type(model), "arch", None)
    if arch not in ARCHS or not isinstance(model, ARCHS[arch]):
        raise TypeError(f"{type(model).__name__} is not a registered spatiotemporal model")
    return arch
