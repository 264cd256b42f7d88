"""SegFormer / SegFormer3D / MiT: any grid (odd, non-cubic), any mixer in any stage, per-stage feature maps and
their ERFs."""

import pytest
import torch

from spatiotemporal import create_model
from spatiotemporal.layers import OverlapPatchEmbed
from spatiotemporal.viz import VizModel, VizSamples
from spatiotemporal.viz.report import erf_report

TINY = dict(embed_dims=(8, 16, 24, 32), num_heads=(1, 2, 3, 4), depths=(1, 1, 1, 1), decoder_dim=16)


def test_2d_segformer_on_odd_sizes():
    m = create_model("segformer_b0", **TINY, num_classes=4).eval()
    with torch.no_grad():
        for shape in ((2, 3, 64, 64), (1, 3, 67, 45), (1, 3, 33, 97)):
            assert m(torch.randn(shape)).shape == (shape[0], 4, *shape[2:])


@pytest.mark.parametrize("shape", [(48, 48, 48), (33, 47, 19), (64, 40, 24)])
def test_segformer3d_on_non_cubic_and_odd_volumes(shape):
    m = create_model("segformer3d_b0", **TINY, in_chans=1, num_classes=6, img_size=(48, 48, 48)).eval()
    with torch.no_grad():
        maps = m.feature_maps(torch.randn(1, 1, *shape))
        y = m(torch.randn(1, 1, *shape))
    assert y.shape == (1, 6, *shape)
    g1 = tuple((s - 1) // 4 + 1 for s in shape)  # kernel 7, stride 4, padding 3
    assert maps["stage1"].shape == (1, 8, *g1) and maps["head"].shape == (1, 16, *g1)
    assert maps["stage4"].shape[1] == 32


@pytest.mark.parametrize("mixer", ["xca", "joint", ("sra", "sra", "xca", "joint"), ("divided",) * 4])
def test_any_mixer_in_any_stage_runs_forward_and_backward(mixer):
    m = create_model("segformer3d_b0", **TINY, in_chans=1, num_classes=3, img_size=(32, 32, 24), mixer=mixer)
    names = mixer if isinstance(mixer, tuple) else (mixer,) * 4
    for stage, name in zip(m.encoder.stages, names):
        assert stage.blocks[0].mixer.registered_name == name
    y = m(torch.randn(2, 1, 32, 32, 24))
    y.square().mean().backward()
    grads = [p.grad for p in m.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    if "sra" in names:
        assert m.encoder.stages[0].blocks[0].mixer.sr_ratio == 4  # SR ratios go to the mixers that take them


def test_mixer_is_a_config_field_checked_per_stage():
    with pytest.raises(ValueError, match="one name or 4"):
        create_model("segformer3d_b0", **TINY, mixer=("sra", "xca"))
    with pytest.raises(ValueError, match="embed_dims must have 4 values"):
        create_model("segformer_b0", embed_dims=(8, 16))


def test_patch_embedding_without_prefix_tokens_has_no_prefix_layer():
    emb = OverlapPatchEmbed(3, 8, prefix_tokens=False)
    assert emb.prefix_proj is None and sum(p.numel() for p in emb.parameters()) == 3 * 8 * 49 + 8 + 16
    with pytest.raises(ValueError, match="prefix_tokens=False"):
        emb(torch.randn(1, 1 + 64, 3), (1, 8, 8), num_prefix=1)


def test_sra_grid_smaller_than_its_ratio_is_a_clear_error():
    m = create_model("segformer3d_b0", **TINY, in_chans=1, img_size=(48, 48, 48))
    with pytest.raises(ValueError, match="smaller than sr_ratio 4"):
        m(torch.randn(1, 1, 48, 48, 8))


def test_stage_erfs_of_every_encoder_stage_and_the_head(tmp_path):
    torch.manual_seed(0)
    m = create_model("segformer3d_b0", **TINY, in_chans=1, num_classes=3, img_size=(32, 32, 32)).eval()
    xs = [torch.rand(1, 32, 32, 32) for _ in range(2)]
    samples = VizSamples("volume", ["a"], 2, "random volumes", lambda: iter((x, 0) for x in xs))
    rep = erf_report([VizModel(m, "tiny", "spec", "sra", "model")], samples, tmp_path / "erf.png", progress=False,
                     stages=["all"])
    assert [r["stage"] for r in rep["models"]] == ["stage1", "stage2", "stage3", "stage4", "head"]
    r50 = [r["area_ratios"][2]["area_ratio"] for r in rep["models"]]
    assert r50[3] >= r50[0]  # stage 4 sees farther than stage 1
    assert (tmp_path / "erf.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="stage1, stage2, stage3, stage4, head"):
        erf_report([VizModel(m, "tiny", "spec", "sra", "model")], samples, tmp_path / "e2.png", progress=False,
                   stages=["stage9"])
