"""2D SegFormer / PVTv2 weights inflated into SegFormer3D: on a volume whose slices are all equal, the 3D model gives
the 2D model's outputs on one slice wherever the math makes it exact."""

import pytest
import timm
import torch
from testing_utils import randomize_

from spatiotemporal import create_model, load_pretrained
from spatiotemporal.layers import pixels_to_tokens
from spatiotemporal.models import INFLATIONS, init_from_checkpoint, save_pretrained

SMALL = dict(embed_dims=(16, 32, 40, 48), depths=(1, 2, 1, 1), num_heads=(1, 2, 5, 8), sr_ratios=(4, 2, 1, 1),
             decoder_dim=32, in_chans=3, num_classes=5, img_size=(64, 48))


def _pair(depth_mode, **kw):
    seg2d = randomize_(create_model("segformer_b0", **{**SMALL, **kw})).eval()
    seg3d = INFLATIONS[("segformer", "segformer3d")](seg2d, depth_mode=depth_mode, img_size=(64, 48, 16),
                                                      in_chans=1, num_classes=5).eval()
    x2 = torch.randn(2, 3, 64, 48)
    x3 = x2.sum(1, keepdim=True).unsqueeze(-1).expand(2, 1, 64, 48, 16).contiguous()  # RGB filters summed
    return seg2d, seg3d, x2.sum(1, keepdim=True).expand(2, 3, 64, 48), x3  # grey in all three RGB channels


@pytest.mark.parametrize("mixer", ["sra", "xca"])
def test_centre_inflation_is_exact_on_equal_slices_at_every_stage_and_the_logits(mixer):
    seg2d, seg3d, x2, x3 = _pair("center", mixer=mixer)
    with torch.no_grad():
        m2, m3 = seg2d.feature_maps(x2), seg3d.feature_maps(x3)
        assert list(m3) == ["stage1", "stage2", "stage3", "stage4", "head"]
        for name in m2:
            a, b = m2[name][:, :, 0], m3[name]  # (B, C, h, w) and (B, C, h, w, d)
            assert b.shape[-1] >= 1 and (b - a.unsqueeze(-1)).abs().max() <= 1e-5, name
        y2, y3 = seg2d(x2), seg3d(x3)
    assert y3.shape == (2, 5, 64, 48, 16)
    assert (y3 - y2.unsqueeze(-1)).abs().max() <= 1e-5


def test_average_inflation_is_exact_for_the_patch_embedding_at_interior_depths_only():
    seg2d, seg3d, x2, x3 = _pair("average")
    emb2, emb3 = seg2d.encoder.stages[0].downsample, seg3d.encoder.stages[0].downsample
    with torch.no_grad():
        t2, g2 = emb2(*pixels_to_tokens(x2))
        t3, g3 = emb3(*pixels_to_tokens(x3))
    a = t2.reshape(2, g2[1], g2[2], -1)
    b = t3.reshape(2, *g3, -1)  # depth 16 -> 4 tokens; taps 4z-3..4z+3 inside [0, 15] for z = 1, 2
    for z in (1, 2):
        assert (b[:, :, :, z] - a).abs().max() <= 1e-5
    assert (b[:, :, :, 0] - a).abs().max() > 1e-3  # zero padding at the first depth
    with torch.no_grad():
        assert (seg3d(x3) - seg2d(x2).unsqueeze(-1)).abs().max() > 1e-4  # not exact after attention


def test_timm_pvt_v2_initialises_segformer3d_through_init_from_checkpoint(tmp_path):
    ref = randomize_(timm.create_model("pvt_v2_b0"))
    target = create_model("segformer3d_b0", in_chans=1, num_classes=6, img_size=(96, 96, 96))
    model = init_from_checkpoint(target, ref.state_dict(), depth_mode="center")
    assert model.cfg.sr_ratios == (8, 4, 2, 1) and model.cfg.mlp_ratios == (8.0, 8.0, 4.0, 4.0)
    w2, w3 = ref.stages[1].blocks[0].attn.sr.weight, model.encoder.stages[1].blocks[0].mixer.sr.weight
    assert w3.shape == (*w2.shape, 4) and torch.equal(w3[..., 2], w2) and w3[..., 0].abs().max() == 0
    x = torch.randn(1, 1, 65, 72, 41)  # odd, non-cubic (SR 8 needs a stage-1 grid of at least 8 per axis)
    model.eval()
    with torch.no_grad():
        assert model(x).shape == (1, 6, 65, 72, 41)
    # our own 2D SegFormer checkpoint too (decoder kept: same classes)
    seg2d = create_model("segformer_b0", in_chans=1, num_classes=6, sr_ratios=(4, 2, 1, 1))
    p = save_pretrained(seg2d, tmp_path / "seg2d.safetensors")
    m3 = init_from_checkpoint(create_model("segformer3d_b0", in_chans=1, num_classes=6, img_size=(48, 48, 48)), p)
    assert torch.equal(m3.decoder.fuse.weight[..., 0], seg2d.decoder.fuse.weight)
    assert load_pretrained(save_pretrained(m3, tmp_path / "m3.safetensors")).arch == "segformer3d"
