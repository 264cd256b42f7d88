"""Inflation's entry points: the pair rules for different trunks (``@register_inflation``), the generic rule for
every single-stage pair (:mod:`.generic`), one WARNING line per inflation, and ``init_from_checkpoint``.

- A single-stage 2D model (a class with ``inflation_source()``: ViT, MLP-Mixer, ConvMixer, XCiT) initialises any
  single-stage video or volume model (a class with ``adopt_stem()``: TimeSformer, VideoMAE, UNETR), with no rule
  per pair (:func:`.generic.inflate_stem`).
- A pair rule, ``@register_inflation(src_arch, dst_arch)`` on ``fn(src_model, **target_config) -> model``, covers
  two families whose trunks differ from that (2D MViTv2 -> MViT / MViT-UNETR, SegFormer / MiT -> SegFormer3D).

Whatever the inflation changes in the config the target was asked for (the target adopts the 2D encoder's width,
depth and heads, its class token and pooling head, SegFormer3D takes the 2D SR ratios, ...) and whatever of the 2D
model it cannot carry is ONE WARNING line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict

from torch import nn

from ...utils.errors import UserInputError
from .._registry import ARCHS, arch_class, build_config
from ..pretrained import inspect_checkpoint, load_pretrained
from .generic import inflate_stem

log = logging.getLogger("spatiotemporal.models")

Inflation = Callable[..., nn.Module]
INFLATIONS: dict[tuple[str, str], Inflation] = {}


def register_inflation(src_arch: str, dst_arch: str):
    """Decorator for ``fn(src_model, **target_config) -> target model`` initialising ``dst_arch`` from ``src_arch``
    (only for trunks the generic single-stage rule does not cover)."""

    def deco(fn: Inflation) -> Inflation:
        INFLATIONS[(src_arch, dst_arch)] = fn
        return fn

    return deco


def _short(v) -> str:
    return f"({', '.join(map(str, v))})" if isinstance(v, tuple) else repr(v) if isinstance(v, str) else str(v)


def config_changes(dst_arch: str, requested: dict, model: nn.Module) -> list[str]:
    """``key asked -> key built`` for every config value of ``model`` that differs from ``requested`` (the target's
    config as asked for: its registered defaults and the caller's values)."""
    asked = asdict(build_config(dst_arch, requested))
    built = model.config_dict()
    return [f"{k} {_short(asked[k])} -> {_short(v)}" for k, v in built.items() if k in asked and asked[k] != v]


def _millions(n: int) -> str:
    return f"{n / 1e6:.1f} M" if n >= 1e5 else f"{n:,}"


def report_inflation(src_arch: str, dst_arch: str, requested: dict, model: nn.Module, notes: list[str],
                     published_params: int | None = None) -> None:
    """The one WARNING line: what the inflated model no longer shares with the requested (published) config, its
    parameter count against the requested model's, and what of the 2D model was not carried."""
    changes = config_changes(dst_arch, requested, model)
    parts = []
    if changes:
        n = sum(p.numel() for p in model.parameters())
        count = f" ({_millions(n)} parameters instead of {_millions(published_params)})" \
            if published_params is not None and published_params != n else ""
        parts.append(f"the {src_arch} model sets {', '.join(changes)}{count}")
    parts += notes
    if parts:
        log.warning("inflation of %s into %s: %s", src_arch, dst_arch, "; ".join(parts))


def inflation_pairs() -> str:
    """What may initialise what, in words (for error messages)."""
    sources = sorted(a for a, c in ARCHS.items() if hasattr(c, "inflation_source"))
    targets = sorted(a for a, c in ARCHS.items() if hasattr(c, "adopt_stem"))
    pairs = ", ".join(f"{a} -> {b}" for a, b in sorted(INFLATIONS))
    return f"any of {', '.join(sources)} -> any of {', '.join(targets)}; {pairs}"


def can_inflate(src_arch: str, dst_arch: str) -> bool:
    """A pair rule, or a single-stage 2D source and a single-stage video / volume target."""
    src, dst = ARCHS.get(src_arch), ARCHS.get(dst_arch)
    return (src_arch, dst_arch) in INFLATIONS or (hasattr(src, "inflation_source") and hasattr(dst, "adopt_stem"))


def inflate(src: nn.Module, dst_arch: str, *, published_params: int | None = None, **kw) -> nn.Module:
    """``src`` (a 2D model) made into an initialisation of ``dst_arch``: a pair rule when one is registered, else
    the generic single-stage rule; ``kw`` are the rule's options (``depth_mode``) and the target's config values.
    Logs the one WARNING line (``published_params``: the requested model's size, for it)."""
    src_arch = src.arch
    arch_class(dst_arch)  # an unknown name: the registry's error
    if not can_inflate(src_arch, dst_arch):
        raise UserInputError(f"a {src_arch} model cannot initialise a {dst_arch} model (same family, or "
                             f"{inflation_pairs()})")
    if (src_arch, dst_arch) in INFLATIONS:
        model, notes = INFLATIONS[(src_arch, dst_arch)](src, **kw), []
        requested = model.__dict__.pop("_inflation_requested", None)
    else:
        model, requested, notes = inflate_stem(src, dst_arch, **kw)
    if requested is not None:
        report_inflation(src_arch, dst_arch, requested, model, notes, published_params)
    return model


def requested_config(model: nn.Module, requested: dict) -> nn.Module:
    """Pair rules: remember the config asked for (before the 2D model's values), for the WARNING line."""
    model._inflation_requested = dict(requested)
    return model


def init_from_checkpoint(target: nn.Module, checkpoint, source_overrides: dict | None = None,
                         **inflate_kw) -> nn.Module:
    """A model shaped like ``target`` (its config) initialised from any checkpoint ``load_pretrained`` reads.

    Same family: the target's config is kept; embeddings are resized to its grid and the head replaced when
    the output size differs. Another family: :func:`inflate`, e.g. a 2D ViT into TimeSformer, VideoMAE or UNETR
    (``inflate_kw`` are its options, ``source_overrides`` what the source checkpoint does not store, such
    as ``num_heads``). Returns the new model in train mode.
    """
    cfg = target.config_dict()
    src_over = dict(source_overrides or {})
    info = inspect_checkpoint(checkpoint, src_over)
    src_arch, dst_arch = info.detected.arch, target.arch
    if src_arch == dst_arch:
        model = load_pretrained(info, **cfg)
    else:
        if not can_inflate(src_arch, dst_arch):
            raise UserInputError(f"{info.name}: a {src_arch} checkpoint cannot initialise a {dst_arch} model "
                                 f"(same family, or {inflation_pairs()})")
        published = sum(p.numel() for p in target.parameters())
        model = inflate(load_pretrained(info, **src_over), dst_arch, published_params=published, **inflate_kw, **cfg)
    model.model_name = getattr(target, "model_name", None)
    return model.train()


def inflate_vit_to_timesformer(vit: nn.Module, **cfg) -> nn.Module:
    """A TimeSformer whose spatial weights are the ViT's (the official rules); ``cfg`` sets frames, size, mixer,
    classes... On a clip of identical frames it gives the ViT's logits (divided, space-only or framewise)."""
    return inflate(vit, "timesformer", **cfg)


def inflate_vit_to_unetr(vit: nn.Module, depth_mode: str = "average", **cfg) -> nn.Module:
    """A UNETR whose encoder is the ViT's (patch kernel and positions made 3D); the decoder starts fresh."""
    return inflate(vit, "unetr", depth_mode=depth_mode, **cfg)
