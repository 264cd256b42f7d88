"""MViT families: any mixer in any stage, every stage's (tokens, grid), other input sizes, the volume segmenter, our
checkpoint format, and inflation of 2D MViTv2 weights (timm's) into video and volume models."""

import pytest
import torch
from testing_utils import randomize_
from timm.models.mvitv2 import MultiScaleVit, MultiScaleVitCfg

from spatiotemporal import create_model, load_pretrained, save_pretrained
from spatiotemporal.models import init_from_checkpoint
from spatiotemporal.models.inflation.mvit import inflate_mvit_image_to_video, inflate_mvit_image_to_volume
from spatiotemporal.viz.models import mixer_label


@pytest.mark.parametrize("mixer", ["divided", "xca", "sra", "joint", ("pooling", "divided", "xca")])
def test_any_mixer_in_any_stage_runs_forward_and_backward(mixer):
    m = create_model("mvit_tiny", mixer=mixer)
    x = torch.randn(2, 3, 8, 32, 32)
    y = m(x)
    y.sum().backward()
    assert y.shape == (2, 4) and all(p.grad is not None for p in m.parameters() if p.requires_grad)
    assert m.stage_grids == [(4, 8, 8), (4, 4, 4), (4, 2, 2)]
    assert mixer_label(m) == (mixer if isinstance(mixer, str) else "pooling/divided/xca")


def test_every_stage_reports_tokens_and_grid():
    m = create_model("mvit_tiny").eval()
    with torch.no_grad():
        outs = m.forward_stages(torch.randn(1, 3, 8, 32, 32))
        assert [o.grid for o in outs] == m.stage_grids and [o.tokens.shape[-1] for o in outs] == [32, 64, 128]
        assert all(o.tokens.shape[1] == 1 + o.grid[0] * o.grid[1] * o.grid[2] for o in outs)  # class token kept
        assert m.feature_map(torch.randn(1, 3, 8, 32, 32), stage=1).shape == (1, 64, 4, 4, 4)


@pytest.mark.parametrize("name", ["mvit_tiny", "mvit_base_16x4"])
def test_other_input_sizes(name):
    """Relative-position tables are interpolated (v2), absolute ones resized (v1)."""
    kw = {} if name == "mvit_tiny" else dict(img_size=32, num_frames=4, depths=(1, 1), embed_dim=16)
    m = create_model(name, **kw).eval()
    with torch.no_grad():
        assert m(torch.randn(1, 3, 6, 48, 40)).shape[0] == 1


def test_volume_segmenter_non_cubic_and_divisibility():
    m = create_model("mvit_unetr_tiny", img_size=(32, 48, 16)).eval()
    assert m.stage_grids == [(8, 12, 4), (4, 6, 2), (2, 3, 1)]
    with torch.no_grad():
        assert m(torch.randn(1, 1, 32, 48, 16)).shape == (1, 6, 32, 48, 16)
        assert m.feature_map(torch.randn(1, 1, 32, 48, 16), stage=1).shape == (1, 64, 4, 6, 2)
    with pytest.raises(ValueError, match="divisible by the total stride"):
        create_model("mvit_unetr_tiny", img_size=(40, 48, 48))
    v = create_model("mvit_unetr_tiny", mixer="xca")
    v(torch.randn(1, 1, 48, 48, 48)).mean().backward()


def test_save_and_load_our_format(tmp_path):
    m = randomize_(create_model("mvit_tiny", mixer=("pooling", "sra", "pooling")).eval())
    path = save_pretrained(m, tmp_path / "m.safetensors")
    loaded = load_pretrained(path)
    x = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), m(x))
    assert {"cls_token", "encoder.stages.0.blocks.0.mixer.rel_pos_t"} <= m.no_weight_decay()


def _timm_2d(**kw):
    return randomize_(MultiScaleVit(MultiScaleVitCfg(depths=(1, 2, 2, 1), embed_dim=32, **kw), img_size=64,
                                    num_classes=5).eval())


def test_static_clip_gives_the_2d_logits():
    src = load_pretrained(_timm_2d().state_dict())
    vid = inflate_mvit_image_to_video(src, num_frames=8, img_size=64).eval()
    assert vid.cfg.stride_kv == (1, 4, 4) and vid.cfg.patch_kernel == (3, 7, 7)  # 2D strides, 3 frames per kernel
    img = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert (vid(img[:, :, None].expand(-1, -1, 8, -1, -1)) - src(img)).abs().max() <= 1e-5


def test_average_inflation_is_exact_only_away_from_the_clip_borders():
    """With the kernel spread over time, the zero padding makes the first frame see 2/3 of a kernel."""
    src = load_pretrained(_timm_2d().state_dict())
    vid = inflate_mvit_image_to_video(src, depth_mode="average", num_frames=8, img_size=64).eval()
    img = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        emb2, _ = src.patch_embed(img)
        emb3, grid = vid.patch_embed(img[:, :, None].expand(-1, -1, 8, -1, -1))
    per_frame = (emb3.reshape(1, grid[0], -1, emb3.shape[-1]) - emb2[:, None]).abs().amax(dim=(0, 2, 3))
    assert per_frame[1:].max() <= 1e-5 and per_frame[0] > 1e-3


def test_volume_with_equal_slices_gives_the_2d_stage_features():
    src = load_pretrained(_timm_2d().state_dict())
    vol = inflate_mvit_image_to_volume(src, img_size=(64, 64, 32), in_chans=1, out_channels=3).eval()
    gray = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        flat = src.forward_stages(gray.expand(-1, 3, -1, -1))
        deep = vol.forward_stages(gray[..., None].expand(-1, -1, -1, -1, 32))
    for a, b in zip(flat, deep):
        assert (b.feature_map() - a.feature_map()[:, :, 0, :, :, None]).abs().max() <= 1e-5


def test_init_from_a_timm_checkpoint_file(tmp_path):
    torch.save(_timm_2d().state_dict(), tmp_path / "mvitv2.pth")
    target = create_model("mvit_tiny", num_frames=4, img_size=64, num_classes=3)
    model = init_from_checkpoint(target, tmp_path / "mvitv2.pth")
    assert model.cfg.embed_dim == 32 and model.cfg.num_classes == 3 and model.training
    model(torch.randn(1, 3, 4, 64, 64)).sum().backward()
