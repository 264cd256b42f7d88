"""Converters from the field's checkpoint layouts to ours, one module per source, each registering itself.

A converter is ``fn(container, state, overrides) -> Detected | None``: ``container`` is the loaded file (a dict),
``state`` its tensors with ``module.`` removed, ``overrides`` what the caller passed to ``load_pretrained``
(read-only: e.g. a patch size the format does not store). It returns None when the state is not its format.
``load_pretrained`` tries them in priority order (lower first), so adding a format touches only its own module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ...utils.errors import SpatioUserError


class CheckpointFormatError(SpatioUserError, ValueError):
    """The file is not a checkpoint layout we know, or does not fit the model it describes."""


@dataclass
class Detected:
    """A recognised checkpoint: its format, our arch and config for it, and its state dict in our names.

    ``dead_keys``: regexes of keys the source library never uses; they are dropped when our model has no such
    key (e.g. MONAI's old class token). ``unknown``: keys no rule knew (an error). ``meta``: what the format
    says about its use, in our spec's names (``class_names``), kept as the model's ``pretrained_cfg``.
    ``assumed``: a config key (or a tuple of keys) the format does not store, or stores inconsistently -> one line
    saying what was assumed and how to set it; ``load_pretrained`` logs it as a WARNING unless the caller passed
    that key (all of those keys).
    """

    fmt: str
    arch: str
    config: dict
    state: dict[str, torch.Tensor]
    dead_keys: tuple[str, ...] = ()
    unknown: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    assumed: dict[str | tuple[str, ...], str] = field(default_factory=dict)


Converter = Callable[[dict, dict, dict], "Detected | None"]
_CONVERTERS: list[tuple[int, str, Converter]] = []


def register_converter(name: str, priority: int = 100):
    """Decorator: add a converter (lower ``priority`` is tried first)."""

    def deco(fn: Converter) -> Converter:
        _CONVERTERS.append((priority, name, fn))
        _CONVERTERS.sort(key=lambda t: t[0])
        return fn

    return deco


def converters() -> list[str]:
    return [name for _, name, _ in _CONVERTERS]


def detect_format(container: dict, state: dict, overrides: dict, name: str) -> Detected:
    for _, _, fn in _CONVERTERS:
        try:
            found = fn(container, state, overrides)
        except ValueError as e:
            raise CheckpointFormatError(f"{name}: {e}") from e
        if found is not None:
            return found
    sample = ", ".join(list(state)[:6])
    raise CheckpointFormatError(
        f"{name}: unknown checkpoint format (first keys: {sample}). Known: {', '.join(converters())}, "
        "and spatiotemporal safetensors+JSON or training checkpoints")


# Each converter module registers itself; adding a format = a module here and its import line.
from . import (  # noqa: E402,F401
    hf_segformer,
    hf_video,
    monai_unetr,
    official_timesformer,
    pytorchvideo_mvit,
    timm_convmixer,
    timm_mixer,
    timm_mvit,
    timm_pvt,
    timm_vit,
    timm_xcit,
    torchvision_mvit,
)
