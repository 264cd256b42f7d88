"""Hostile architecture overrides on every registered family: one line of the user-error type naming the key,
raised by the config (``models/validate.py``) before any module or tensor exists; never a raw
``ZeroDivisionError`` / ``RuntimeError`` / oneDNN error from deep inside a layer."""

from __future__ import annotations

import dataclasses

import pytest

from spatiotemporal.models import create_model
from spatiotemporal.models._registry import arch_class, build_config, list_archs
from spatiotemporal.models.validate import ModelConfigError
from spatiotemporal.utils.errors import SpatioUserError

DEPTH_KEYS = ("depth", "depths", "num_layers")
STRIDE_KEYS = ("patch_size", "patch_sizes", "patch_stride", "strides", "tubelet_size", "stride_q", "stride_kv")
KERNEL_KEYS = ("kernel_size", "kernel_q", "kernel_kv", "patch_kernel")
WIDTH_KEYS = ("embed_dim", "embed_dims", "dim", "hidden_size")


def _first(value, x):
    """``value`` with its first entry (a tuple) or itself (a scalar) replaced by ``x``."""
    return (x, *value[1:]) if isinstance(value, tuple) else x


def _non_divisor(width: int) -> int:
    return next(h for h in range(2, width + 2) if width % h)


def hostile_overrides(arch: str) -> list[tuple[str, object]]:
    """``(key, value)`` cases from the family's own config fields: depth 0 and negative, every patch / stride and
    kernel 0, widths 0 and negative, heads 0 and heads that do not divide the width."""
    cfg = arch_class(arch).config_cls()
    names = {f.name for f in dataclasses.fields(cfg)}
    found = {group: [k for k in keys if k in names] for group, keys in
             (("depth", DEPTH_KEYS), ("stride", STRIDE_KEYS), ("width", WIDTH_KEYS), ("heads", ("num_heads",)))}
    missing = [group for group, keys in found.items() if not keys]
    assert not missing, f"{arch}: no config key for {missing}: declare the family's names in this test"
    cases = []
    for k in found["depth"] + found["width"]:
        cases += [(k, _first(getattr(cfg, k), 0)), (k, _first(getattr(cfg, k), -1))]
    cases += [(k, _first(getattr(cfg, k), 0)) for k in found["stride"] + [k for k in KERNEL_KEYS if k in names]]
    heads, width = cfg.num_heads, getattr(cfg, found["width"][0])
    if isinstance(heads, tuple):
        bad = (*heads[:-1], _non_divisor(width[-1]))
    else:
        bad = _non_divisor(width[-1] if isinstance(width, tuple) else width)
    cases += [("num_heads", _first(heads, 0)), ("num_heads", bad)]
    return cases


def test_every_registered_family_is_covered():
    archs = list_archs()
    assert len(archs) >= 14 and {"segformer3d", "xcit", "convmixer", "mvit_unetr", "unetr2d"} <= set(archs)


@pytest.mark.parametrize("arch", list_archs())
def test_hostile_overrides_are_one_line_naming_the_key_before_anything_is_built(arch):
    cases = hostile_overrides(arch)
    assert len(cases) >= 7, cases
    for key, value in cases:
        with pytest.raises(ModelConfigError) as at_config:  # the config refuses it: no module, no tensor yet
            build_config(arch, {key: value})
        with pytest.raises(SpatioUserError) as e:  # what the Python API and the CLI (exit 2) get
            create_model(arch, **{key: value})
        msg = str(e.value)
        assert msg == str(at_config.value), (key, value)
        assert "\n" not in msg and msg.startswith(f"cannot build a {arch} model with this config: "), msg
        assert key in msg, (key, msg)
        cause = e.value
        while cause is not None:  # nothing raw underneath
            assert not isinstance(cause, (ZeroDivisionError, RuntimeError, ArithmeticError)), (key, repr(cause))
            cause = cause.__cause__ or cause.__context__


@pytest.mark.parametrize("arch, overrides, expected", [
    ("segformer3d", {"strides": (0, 2, 2, 2)}, "strides (0, 2, 2, 2) must be positive sizes (>= 1)"),
    ("segformer3d", {"num_heads": (1, 2, 5, 7)}, "embed_dims (32, 64, 160, 256) and num_heads (1, 2, 5, 7): the "
                                                 "width 256 of stage 4 is not divisible by its 7 heads (4 or 8 "
                                                 "would divide it)"),
    ("segformer", {"patch_sizes": (0, 3, 3, 3)}, "patch_sizes (0, 3, 3, 3) must be positive sizes (>= 1)"),
    ("segformer", {"num_classes": 0}, "num_classes must be an integer >= 1, got 0"),
    ("segformer", {"depths": (2, 2, 2)}, "embed_dims must have 3 values (one per stage, as depths)"),
    ("xcit", {"num_heads": 5}, "dim 128 is not divisible by num_heads 5 (embed_dim 128: num_heads 4 or 8 would "
                               "divide it)"),
    ("convmixer", {"kernel_size": 0}, "kernel_size must be an integer >= 1, got 0"),
    ("videomae", {"num_frames": 15}, "num_frames 15 is not a multiple of tubelet_size 2"),
    ("unetr", {"img_size": (96, 96, 90)}, "img_size (96, 96, 90) is not a multiple of patch_size 16"),
    ("vit", {"drop_path_rate": 1.0}, "drop_path_rate must be a rate in [0, 1), got 1.0"),
    ("timesformer", {"depth": "12"}, "depth must be an integer >= 1, got '12'"),
    ("mlp_mixer", {"token_ratio": 0.0}, "token_ratio must be a number > 0, got 0.0"),
])
def test_the_family_checks_say_what_was_expected(arch, overrides, expected):
    """The cases of issue 24 (SegFormer3D stride 0: ZeroDivisionError; heads not dividing 256; SegFormer patch 0;
    XCiT heads not dividing the width; ConvMixer kernel 0: a oneDNN error) and the family relations."""
    with pytest.raises(ModelConfigError) as e:
        create_model(arch, **overrides)
    assert str(e.value) == f"cannot build a {arch} model with this config: {expected}" or \
        str(e.value).startswith(f"cannot build a {arch} model with this config: {expected}"), str(e.value)


def test_a_config_built_directly_is_checked_too():
    """The Python API without the registry: the config itself refuses the value (a user error, also a ValueError)."""
    cfg_cls = arch_class("xcit").config_cls
    with pytest.raises(ModelConfigError, match=r"^dim 128 is not divisible by num_heads 3 ") as e:
        cfg_cls(num_heads=3)
    assert isinstance(e.value, ValueError)
    assert cfg_cls(num_heads=8).num_heads == 8 and cfg_cls(num_classes=0).num_classes == 0  # valid ones pass
