"""The one inflation rule of every single-stage pair: a 2D model's :class:`~.stem.Stem2d` adopted by a video or
volume model.

1. ``src.inflation_source()`` describes the 2D model: encoder, patch kernel, positions, class token, pooling head.
2. The target's config is the one asked for, with the 2D encoder written in (``with_encoder``: width, depth,
   heads, mixer, FFN, norms, LayerScale; the mixer asked for stays when it starts from the 2D one, its
   ``inflates_from``, e.g. divided attention from a ViT's joint attention) and what the target's
   ``stem_config(stem)`` decides (patch size when the kernel is carried, class token, pooling); a target that
   cannot hold the 2D class token or pooling head refuses in one line (:class:`UserInputError`).
3. ``model.adopt_stem(stem, depth_mode=...)`` gives the target's tensors (kernel inflated over time or depth,
   positions resized, ``time_embed`` zero, norm, pooling head and classifier carried); each mixer's
   ``inflate_state_dict`` hook fits its block to the new grid; every other tensor keeps the target's own init.

On a clip of identical frames (a volume of identical slices), the inflated encoder gives the 2D encoder's tokens;
where the stem, positions and head are carried too, the 2D model's features and logits (tests).
"""

from __future__ import annotations

import logging
from dataclasses import replace

import torch
from torch import nn

from ...layers import MIXERS
from .._registry import arch_class, build_config, build_model
from ..encoder import encoder_of
from ..pretrained import load_state_strict
from .stem import with_prefix

log = logging.getLogger("spatiotemporal.models")


def inflate_mixers(model: nn.Module, sd: dict[str, torch.Tensor]) -> None:
    """Let every mixer of ``model.encoder`` add its own keys to ``sd`` (its ``inflate_state_dict`` hook)."""
    for i, blk in enumerate(model.encoder.blocks):
        blk.mixer.inflate_state_dict(sd, f"encoder.blocks.{i}.mixer.")


def inflate_stem(src: nn.Module, dst_arch: str, *, depth_mode: str = "average",
                 **cfg) -> tuple[nn.Module, dict, list[str]]:
    """``(model, the config asked for, notes)``: a ``dst_arch`` model initialised from the single-stage 2D model
    ``src``; ``cfg`` sets the target's frames, size, classes, mixer options... (the encoder follows ``src``)."""
    stem = src.inflation_source()
    cls = arch_class(dst_arch)
    base = {cls.head_key: stem.num_classes} if cls.head_key == "num_classes" else {}
    if cls.modality == "video":
        base["img_size"] = stem.img_size
    requested = {**base, **cfg}
    asked = encoder_of(build_config(dst_arch, requested))
    starts_from = getattr(MIXERS.get(asked.mixer), "inflates_from", ())
    if asked.mixer != stem.encoder.mixer and stem.encoder.mixer in starts_from:
        stem.encoder = replace(stem.encoder, mixer=asked.mixer, mixer_kwargs=asked.mixer_kwargs)
    model = build_model(dst_arch, {**requested, **cls.stem_config(stem)})
    sd, notes = model.adopt_stem(stem, depth_mode=depth_mode)
    sd.update(with_prefix("encoder.", stem.encoder_state))
    inflate_mixers(model, sd)
    fresh = tuple(k for k in model.state_dict() if k not in sd)
    load_state_strict(model, sd, f"inflated {stem.arch}", allow_missing=fresh)
    mixer_fresh = [k for k in fresh if ".mixer." in k]
    if mixer_fresh:
        log.info("inflation: %d mixer tensors start from their own init (e.g. %s)", len(mixer_fresh), mixer_fresh[0])
    return model, requested, list(stem.dropped) + notes
