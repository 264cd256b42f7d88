"""Every single-stage config declares its encoder once (``ENCODER_FIELDS``), read by ``encoder_of`` and written back
by ``with_encoder``; mixer options held under a model's own names reach the mixer through the mixer's hook."""

import dataclasses

import pytest

from spatiotemporal.models import ARCHS, EncoderConfig, encoder_of, with_encoder
from spatiotemporal.utils.errors import UserInputError

SINGLE_STAGE = ["vit", "timesformer", "videomae", "unetr", "unetr2d", "xcit", "mlp_mixer", "convmixer"]


@pytest.mark.parametrize("arch", SINGLE_STAGE)
def test_encoder_fields_round_trip(arch):
    cfg_cls = ARCHS[arch].config_cls
    enc = EncoderConfig(dim=96, depth=3, num_heads=3, mixer="space_only", mixer_kwargs={}, ffn="mlp", ffn_kwargs={},
                        mlp_ratio=2.0, qkv_bias=False, norm_eps=1e-5, init_values=None)
    if arch == "mlp_mixer":  # no qkv_bias field: it holds only the default
        enc = dataclasses.replace(enc, qkv_bias=True)
    if arch == "convmixer":  # no mlp_ratio, qkv_bias or norm_eps fields
        enc = dataclasses.replace(enc, mlp_ratio=4.0, qkv_bias=True, norm_eps=1e-6)
    cfg = with_encoder(cfg_cls(), enc)
    back = encoder_of(cfg)
    for f in ("dim", "depth", "num_heads", "mixer", "mlp_ratio", "qkv_bias", "norm_eps", "init_values"):
        assert getattr(back, f) == getattr(enc, f), f


def test_a_value_the_config_cannot_hold_is_named():
    enc = EncoderConfig(dim=64, depth=2, num_heads=2, qkv_bias=False)
    with pytest.raises(UserInputError, match="ConvMixerConfig cannot hold the encoder's qkv_bias=False"):
        with_encoder(ARCHS["convmixer"].config_cls, enc)


def test_mixer_options_come_from_the_model_config_through_the_mixer():
    conv = encoder_of(ARCHS["convmixer"].config_cls(kernel_size=5, act="relu"))
    assert conv.mixer_kwargs == {"kernel_size": 5, "act": "relu"} and conv.ffn_kwargs == {"act": "relu"}
    assert encoder_of(ARCHS["convmixer"].config_cls(mixer="joint")).mixer_kwargs == {}
    mixer = encoder_of(ARCHS["mlp_mixer"].config_cls(token_ratio=0.25, mixer_kwargs={"token_ratio": 0.75}))
    assert mixer.mixer_kwargs == {"token_ratio": 0.75} and mixer.drop_path_mode == "uniform"
    xcit = encoder_of(ARCHS["xcit"].config_cls(eta=1e-5))
    assert xcit.init_values is None and xcit.mixer_kwargs == xcit.ffn_kwargs == {"layer_scale": 1e-5}
    assert encoder_of(ARCHS["xcit"].config_cls(eta=1e-5, mixer="joint")).init_values == 1e-5


def test_encoder_config_is_keyword_only():
    with pytest.raises(TypeError):
        EncoderConfig(64, 2, 2)  # noqa
