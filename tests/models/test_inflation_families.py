"""MLP-Mixer, ConvMixer and XCiT -> TimeSformer (video) and -> UNETR (volume): a static clip, or a volume whose slices
along depth are all equal, gives the 2D encoder's tokens exactly (and, for the MLP-Mixer, the 2D logits)."""

import pytest
import torch
from testing_utils import randomize_

from spatiotemporal import create_model, save_pretrained
from spatiotemporal.models import inflate, init_from_checkpoint

SOURCES = ["mixer_tiny_builtin", "convmixer_tiny_builtin", "xcit_tiny_builtin"]


def _source(name):
    torch.manual_seed(0)
    return randomize_(create_model(name)).eval()


def _tokens_2d(src, img):
    """The 2D model's encoder input and output tokens ``(B, N, D)`` and grid."""
    if src.arch == "xcit":
        tokens, grid = src.embed(img)
    else:
        tokens, grid = src.patch_embed(img)
        if src.arch == "convmixer":
            tokens = src.stem_bn(src.stem_act(tokens))
    return tokens, src.encoder(tokens, grid, 0)[0], grid


@pytest.mark.parametrize("name", SOURCES)
def test_static_clip_gives_the_2d_encoder_tokens(name):
    src = _source(name)
    ts = inflate(src, "timesformer", num_frames=3).eval()
    assert ts.cls_token is None and ts.cfg.global_pool == "avg" and ts.cfg.mixer == src.cfg.mixer
    img = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        tokens, out2d, (_, gh, gw) = _tokens_2d(src, img)
        clip_tokens = tokens.unsqueeze(1).expand(-1, 3, -1, -1).flatten(1, 2)
        out3d = ts.encoder(clip_tokens, (3, gh, gw), 0)[0].unflatten(1, (3, gh * gw))
        assert (out3d - out2d.unsqueeze(1)).abs().max() <= 1e-5
        if src.arch == "mlp_mixer":  # the whole model: the Mixer's logits
            clip = img.unsqueeze(2).expand(-1, -1, 3, -1, -1)
            assert (ts(clip) - src(img)).abs().max() <= 1e-5


@pytest.mark.parametrize("name", SOURCES)
def test_equal_slices_give_the_2d_encoder_tokens(name):
    src = _source(name)
    patch = 8 if src.arch == "xcit" else src.cfg.patch_size  # a carried patch kernel keeps its patch size
    unetr = inflate(src, "unetr", img_size=(32, 32, 3 * patch), patch_size=patch, out_channels=3).eval()
    img = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        tokens, out2d, (_, gh, gw) = _tokens_2d(src, img)
        vol_tokens = tokens.unflatten(1, (gh, gw)).unsqueeze(3).expand(-1, -1, -1, 3, -1).flatten(1, 3)
        out3d = unetr.encoder(vol_tokens, (gh, gw, 3), 0)[0].unflatten(1, (gh, gw, 3))
        assert (out3d - out2d.unflatten(1, (gh, gw)).unsqueeze(3)).abs().max() <= 1e-5
        vol = img.mean(1, keepdim=True).unsqueeze(-1).expand(-1, -1, -1, -1, 3 * patch)
        assert unetr(vol).shape == (2, 3, 32, 32, 3 * patch)


def test_inflation_rules_start_what_they_cannot_copy_as_documented():
    src = _source("convmixer_tiny_builtin")
    ts = inflate(src, "timesformer", num_frames=4)
    mixer = ts.encoder.blocks[0].mixer
    assert mixer.mode == "2+1d" and mixer.conv_t.weight[:, 0].tolist() == [[0.0, 1.0, 0.0]] * 128
    assert torch.equal(ts.patch_embed.proj.weight, src.patch_embed.proj.weight)
    assert torch.equal(ts.head.weight, src.head.weight) and ts.time_embed.abs().max() == 0
    unetr = inflate(src, "unetr", img_size=(32, 32, 16), patch_size=8, out_channels=2)
    assert unetr.encoder.blocks[0].mixer.conv.weight.shape[-3:] == (5, 5, 5)
    xs = inflate(_source("xcit_tiny_builtin"), "timesformer", num_frames=2)
    assert xs.encoder.blocks[0].mixer.lpi.ndim == 2 and xs.pos_embed.abs().max() > 0


def test_init_from_a_mixer_checkpoint(tmp_path):
    """``--init`` a 2D Mixer checkpoint into a video model of another size (token MLPs resampled)."""
    path = save_pretrained(_source("mixer_tiny_builtin"), tmp_path / "mixer.safetensors")
    target = create_model("timesformer_tiny", mixer="mlp_mixer", img_size=48, num_frames=2)
    model = init_from_checkpoint(target, path)
    assert model.cfg.patch_size == 4 and model.encoder.blocks[0].mixer.mlp_tokens.shape == (2, 12, 12)
    assert model(torch.randn(1, 3, 2, 48, 48)).shape == (1, 8)
