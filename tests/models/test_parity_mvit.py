"""torchvision, pytorchvideo and timm MViTs: their state dicts load into ours through ``load_pretrained`` and give
their outputs (fp32, eval, every weight random); parameter counts equal theirs."""

import logging

import pytest
import timm
import torch
import torchvision.models.video.mvit as tvm
from testing_utils import randomize_

from spatiotemporal import create_model, load_pretrained
from spatiotemporal.models import CheckpointFormatError


def _random(model: torch.nn.Module) -> torch.nn.Module:
    """Every weight random; LayerNorm scales around 1 so that the signal survives 16 blocks."""
    randomize_(model.eval())
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.add_(1.0 - m.weight.mean())
    return model


def _n(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _torchvision(name: str, frames: int, size: int, monkeypatch, **kw):
    """torchvision's own builder (its published block table) at another input size: its ``mvit_*`` functions pin
    16 x 224, so the size is passed through to ``_mvit``."""
    build = tvm._mvit
    monkeypatch.setattr(tvm, "_mvit", lambda **a: build(**{**a, "spatial_size": (size, size), "temporal_size": frames}))
    return _random(getattr(tvm, name)(**kw))


def _check(ref, ours, x, ref_features=None):
    with torch.no_grad():
        a, b = ref(x), ours(x)
        diff = (a - b).abs().max().item()
        assert diff <= 1e-5 and a.std() > 0.1, (diff, a.std())
        if ref_features is not None:
            assert (ref_features(x) - ours.forward_features(x)).abs().max() <= 1e-5


def test_parameter_counts_equal_the_references():
    from pytorchvideo.models.hub import mvit_base_16x4

    with torch.device("meta"):  # shapes only
        assert _n(create_model("mvit_v2_s")) == _n(tvm.mvit_v2_s()) == 34_537_744
        assert _n(create_model("mvit_base_16x4")) == _n(tvm.mvit_v1_b()) == 36_610_672
        for ours, theirs in (("mvit_image_tiny", "mvitv2_tiny"), ("mvit_image_small", "mvitv2_small")):
            assert _n(create_model(ours)) == _n(timm.create_model(theirs))
    assert _n(mvit_base_16x4()) == 36_610_672  # pytorchvideo's builder does not run on the meta device


@pytest.mark.parametrize("name", ["mvit_v2_s", "mvit_v1_b"])
def test_torchvision_weights_give_torchvision_outputs(name, monkeypatch, caplog):
    ref = _torchvision(name, 4, 64, monkeypatch, num_classes=7)
    with caplog.at_level(logging.WARNING, logger="spatiotemporal"):
        ours = load_pretrained(ref.state_dict())
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        "<dict>: a torchvision MViT state dict stores no strides: assumed the published patch_stride=(2, 4, 4), "
        "stride_q=(1, 2, 2), stride_kv=(1, 8, 8); a model trained with other strides gives other outputs: pass them "
        "to load_pretrained to set them"]  # strides are not stored: one line says what was assumed
    assert ours.source_format == "torchvision-mvit" and (ours.cfg.num_frames, ours.cfg.img_size) == (4, 64)
    assert ours.cfg.rel_pos == (name == "mvit_v2_s") and ours.cfg.depths == (1, 2, 11, 2)
    _check(ref, ours, torch.randn(2, 3, 4, 64, 64))


@pytest.mark.slow
def test_torchvision_mvit_v2_s_at_16x224():
    ref = _random(tvm.mvit_v2_s())
    ours = load_pretrained(ref.state_dict())
    assert ours.config_dict() == create_model("mvit_v2_s").config_dict() | {"drop_path_rate": 0.2}
    _check(ref, ours, torch.randn(1, 3, 16, 224, 224))


def test_pytorchvideo_weights_give_pytorchvideo_outputs():
    from pytorchvideo.models.hub import mvit_base_16x4

    ref = _random(mvit_base_16x4(spatial_size=64, temporal_size=4, head_num_classes=7))
    ours = load_pretrained(ref.state_dict())
    assert ours.source_format == "pytorchvideo-mvit" and ours.cfg.pool_norm_eps == 1e-5 and not ours.cfg.expand_attn

    def features(x):  # pytorchvideo's head: class token after the final norm
        h = ref.cls_positional_encoding(ref.patch_embed(x))
        thw = ref.cls_positional_encoding.patch_embed_shape
        for blk in ref.blocks:
            h, thw = blk(h, thw)
        return ref.norm_embed(h)[:, 0]

    _check(ref, ours, torch.randn(2, 3, 4, 64, 64), features)
    _check(ref, ours, torch.randn(1, 3, 4, 64, 64))


def test_pytorchvideo_joint_position_embedding_is_named():
    from pytorchvideo.models.vision_transformers import create_multiscale_vision_transformers

    ref = create_multiscale_vision_transformers(spatial_size=32, temporal_size=4, depth=2, sep_pos_embed=False,
                                                pool_kv_stride_adaptive=[1, 2, 2], pool_kvq_kernel=[3, 3, 3])
    with pytest.raises(CheckpointFormatError, match="sep_pos_embed=False"):
        load_pretrained(ref.state_dict())


@pytest.mark.parametrize("kw", [{}, {"use_cls_token": True}, {"expand_attn": False}])
def test_timm_weights_give_timm_outputs(kw):
    """timm's MultiScaleVit (small widths, the mvitv2 layout): average pooling; a class token (timm adds residual
    pooling to it); widths grown in the MLP (as mvitv2_large)."""
    from timm.models.mvitv2 import MultiScaleVit, MultiScaleVitCfg

    ref = _random(MultiScaleVit(MultiScaleVitCfg(depths=(1, 2, 2, 1), embed_dim=32, **kw), img_size=64,
                                num_classes=11))
    ours = load_pretrained(ref.state_dict())
    assert ours.arch == "mvit_image" and ours.cfg.expand_attn == kw.get("expand_attn", True)
    _check(ref, ours, torch.randn(2, 3, 64, 64), lambda x: ref.forward_head(ref.forward_features(x), pre_logits=True))
