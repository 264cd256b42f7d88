"""The generic single-stage inflation into VideoMAE (no pair rule): a clip of identical frames gives the 2D model's
logits where its stem, positions and head are carried (ViT with GAP, MLP-Mixer), its encoder tokens otherwise
(XCiT, ConvMixer); class tokens and MAP heads, which VideoMAE cannot hold, are refused in one line."""

import logging

import pytest
import torch
from testing_utils import randomize_

from spatiotemporal import create_model
from spatiotemporal.models import inflate
from spatiotemporal.utils.errors import UserInputError

CLIP = dict(num_frames=4, tubelet_size=2, num_classes=10)


def _src(name, **kw):  # one block: the identities hold block by block
    torch.manual_seed(0)
    return randomize_(create_model(name, depth=1, **kw)).eval()


def _static(img, t=4):
    return img.unsqueeze(2).expand(-1, -1, t, -1, -1)


@pytest.mark.parametrize("name, kw", [("vit_tiny_builtin", dict(class_token=False, global_pool="avg", fc_norm=True)),
                                      ("vit_tiny_builtin", dict(class_token=False, global_pool="avg")),
                                      ("mixer_tiny_builtin", {})])
def test_static_clip_gives_the_2d_logits(name, kw):
    src = _src(name, **kw)
    vm = inflate(src, "videomae", **CLIP).eval()
    assert vm.cfg.pos_embed == "learned" and vm.cfg.embed_dim == src.cfg.embed_dim
    img = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert (vm(_static(img)) - src(img)).abs().max() <= 1e-5
        assert (vm.forward_features(_static(img)) - src.forward_features(img)).abs().max() <= 1e-5


@pytest.mark.parametrize("name", ["xcit_tiny_builtin", "convmixer_tiny_builtin"])
def test_static_clip_gives_the_2d_encoder_tokens(name):
    src = _src(name)
    vm = inflate(src, "videomae", **CLIP).eval()
    assert vm.cfg.mixer == src.cfg.mixer
    img = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        if name.startswith("xcit"):
            tokens, (_, gh, gw) = src.embed(img)
        else:
            tokens, (_, gh, gw) = src.patch_embed(img)
            tokens = src.stem_bn(src.stem_act(tokens))
        out2d = src.encoder(tokens, (1, gh, gw), 0)[0]
        clip = tokens.unsqueeze(1).expand(-1, 2, -1, -1).flatten(1, 2)  # T' = 4 / tubelet 2
        out3d = vm.encoder(clip, (2, gh, gw), 0)[0].unflatten(1, (2, gh * gw))
    assert (out3d - out2d.unsqueeze(1)).abs().max() <= 1e-5
    assert vm(_static(img)).shape == (2, 10)


@pytest.mark.parametrize("kw, what", [({}, "class token"), (dict(class_token=False, global_pool="map"), "MAP head")])
def test_a_head_videomae_cannot_hold_is_refused(kw, what):
    with pytest.raises(UserInputError, match=f"vit model's {what} cannot be carried"):
        inflate(_src("vit_tiny_builtin", **kw), "videomae", **CLIP)


def test_one_warning_line_names_what_no_longer_matches_the_requested_config(caplog):
    with caplog.at_level(logging.WARNING, logger="spatiotemporal.models"):
        inflate(_src("mixer_tiny_builtin"), "videomae", **CLIP, img_size=32, embed_dim=96, published_params=123)
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(lines) == 1
    assert "embed_dim 96 -> 128" in lines[0] and "pos_embed 'sinusoid' -> 'learned'" in lines[0]
    assert "pool_norm 'after' -> 'before'" in lines[0] and "parameters instead of 123" in lines[0]


def test_inflated_videomae_loads_at_another_size_and_frame_count(tmp_path):
    from spatiotemporal import load_pretrained, save_pretrained

    vm = inflate(_src("vit_tiny_builtin", class_token=False, global_pool="avg"), "videomae", **CLIP)
    path = save_pretrained(vm, tmp_path / "vm.safetensors")
    big = load_pretrained(path, img_size=48, num_frames=8)  # learned positions resized: 4x4 -> 6x6, 2 -> 4 steps
    assert big.pos_embed.shape == (1, 36, 128) and big.time_embed.shape == (1, 4, 128)
    assert big(torch.randn(1, 3, 8, 48, 48)).shape == (1, 10)


def test_a_vit_initialises_a_2d_unetr_through_the_same_rule():
    vit = _src("vit_tiny_builtin", class_token=False, global_pool="avg")
    un = inflate(vit, "unetr2d", img_size=(32, 32), in_channels=3, out_channels=3, patch_size=8)
    assert torch.equal(un.patch_embed.proj.weight, vit.patch_embed.proj.weight)
    assert torch.equal(un.pos_embed, vit.pos_embed) and un(torch.randn(1, 3, 32, 32)).shape == (1, 3, 32, 32)
