"""Construction-time checks of model configs: one line naming the key, before any tensor is allocated.

Every model config calls :func:`check_config` from its ``__post_init__``. The common checks apply to every field
with a known name (``depth`` / ``depths`` / ``num_layers``, widths, heads, patch sizes, kernels and strides,
channels, ratios, rates, epsilons), whatever the family; a family declares the relations between its fields
(``heads``: the heads divide the width, per stage for tuples; ``multiples``: a size is a multiple of a step;
``same_length``: per-stage tuples with one value per stage; ``positive``: fields that must be >= 1 in this family
only, e.g. a segmenter's ``num_classes``). A failure is a :class:`ModelConfigError` (a user error: the CLI prints
its one line and exits with 2); ``build_config`` adds ``cannot build a FAMILY model with this config:``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Iterable, Sequence

from ..utils.errors import UserInputError

__all__ = ["ModelConfigError", "check_config"]


class ModelConfigError(UserInputError):
    """A model config value out of its range or inconsistent with another (the message names the key)."""


#: Kernels, strides, patches and input sizes: each value (or every value of a tuple) an integer >= 1.
SIZE_KEYS = frozenset({
    "img_size", "num_frames", "patch_size", "patch_sizes", "patch_kernel", "patch_stride", "strides", "tubelet_size",
    "kernel_size", "kernel_q", "kernel_kv", "stride_q", "stride_kv", "sr_ratios",
})
#: Depths, widths, heads and channels: integers >= 1.
COUNT_KEYS = frozenset({
    "depth", "depths", "num_layers", "embed_dim", "embed_dims", "dim", "hidden_size", "mlp_dim", "num_heads",
    "in_chans", "in_channels", "out_channels", "feature_size", "decoder_dim",
})
#: Integers >= 0 (0 = none: ``num_classes=0`` is a model without a classifier).
NON_NEGATIVE_KEYS = frozenset({"num_classes", "cls_attn_layers"})
#: Numbers > 0 (None allowed where the field's default is None).
POSITIVE_NUMBER_KEYS = frozenset({"mlp_ratio", "mlp_ratios", "token_ratio", "norm_eps", "embed_norm_eps",
                                  "fc_norm_eps", "pool_norm_eps"})
#: Probabilities in [0, 1).
RATE_KEYS = frozenset({"drop_path_rate", "decoder_dropout", "head_dropout"})
#: Numbers >= 0.
NON_NEGATIVE_NUMBER_KEYS = frozenset({"time_embed_std"})


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _values(v) -> tuple | None:
    """A tuple's values, or None for a scalar."""
    return tuple(v) if isinstance(v, Sequence) and not isinstance(v, str) else None


def _check_ints(key: str, value, low: int, what: str) -> None:
    vals = _values(value)
    if vals is None:
        if not _is_int(value) or value < low:
            raise ModelConfigError(f"{key} must be an integer >= {low}, got {value!r}")
    elif not vals or not all(_is_int(v) and v >= low for v in vals):
        raise ModelConfigError(f"{key} {vals} must be {what} (>= {low})")


def _check_numbers(key: str, value, ok, what: str) -> None:
    vals = _values(value)
    for v in (value,) if vals is None else vals:
        if not (_is_number(v) and ok(v)):
            raise ModelConfigError(f"{key} must be {what}, got {value!r}")


def _common(cfg) -> None:
    for f in dataclasses.fields(cfg):
        key, value = f.name, getattr(cfg, f.name)
        if key in SIZE_KEYS:
            _check_ints(key, value, 1, "positive sizes")
        elif key in COUNT_KEYS:
            _check_ints(key, value, 1, "integers")
        elif key in NON_NEGATIVE_KEYS:
            _check_ints(key, value, 0, "integers")
        elif key in POSITIVE_NUMBER_KEYS and value is not None:
            _check_numbers(key, value, lambda v: v > 0, "a number > 0")
        elif key in RATE_KEYS:
            _check_numbers(key, value, lambda v: 0 <= v < 1, "a rate in [0, 1)")
        elif key in NON_NEGATIVE_NUMBER_KEYS:
            _check_numbers(key, value, lambda v: v >= 0, "a number >= 0")


def _near_divisors(width: int, heads: int) -> str:
    """The divisors of ``width`` nearest to ``heads`` (below and above), for the message."""
    below = next(h for h in range(min(heads, width), 0, -1) if width % h == 0)
    above = next((h for h in range(heads + 1, width + 1) if width % h == 0), None)
    return f"{below} or {above}" if above is not None and above != below else str(below)


def _check_heads(cfg, width_key: str, heads_key: str) -> None:
    width, heads = getattr(cfg, width_key), getattr(cfg, heads_key)
    ws, hs = _values(width), _values(heads)
    if ws is None and hs is None:
        if width % heads:
            raise ModelConfigError(f"dim {width} is not divisible by {heads_key} {heads} ({width_key} {width}: "
                                   f"{heads_key} {_near_divisors(width, heads)} would divide it)")
        return
    ws, hs = ws or (width,) * len(hs), hs or (heads,) * len(ws)
    for i, (w, h) in enumerate(zip(ws, hs)):
        if w % h:
            raise ModelConfigError(f"{width_key} {ws} and {heads_key} {hs}: the width {w} of stage {i + 1} is not "
                                   f"divisible by its {h} heads ({_near_divisors(w, h)} would divide it)")


def _check_multiple(cfg, size_key: str, step_key: str) -> None:
    size, step = getattr(cfg, size_key), getattr(cfg, step_key)
    sizes = _values(size) or (size,)
    steps = _values(step) or (step,) * len(sizes)
    if any(s % p for s, p in zip(sizes, steps)):
        raise ModelConfigError(f"{size_key} {size} is not a multiple of {step_key} {step}")


def check_config(cfg, *, heads: Iterable[tuple[str, str]] = (), multiples: Iterable[tuple[str, str]] = (),
                 same_length: Sequence[str] = (), positive: Iterable[str] = ()) -> None:
    """Check the dataclass ``cfg``: the common rules for every field with a known name, then the family's
    declared relations (see the module docstring). Raises :class:`ModelConfigError` naming the key."""
    _common(cfg)
    for key in positive:
        _check_ints(key, getattr(cfg, key), 1, "integers")
    if same_length:
        n = len(getattr(cfg, same_length[0]))
        for key in same_length[1:]:
            vals = _values(getattr(cfg, key))
            if vals is None or len(vals) != n:
                raise ModelConfigError(f"{key} must have {n} values (one per stage, as {same_length[0]}), "
                                       f"got {getattr(cfg, key)!r}")
    for width_key, heads_key in heads:
        _check_heads(cfg, width_key, heads_key)
    for size_key, step_key in multiples:
        _check_multiple(cfg, size_key, step_key)
