"""``forward_intermediates``: one contract for flat (TimeSformer) and hierarchical (MViT, MiT / SegFormer3D) models,
checked against what each model computes itself."""

import pytest
import torch

from spatiotemporal.models import create_model
from spatiotemporal.utils.errors import UserInputError

TSF = dict(img_size=32, patch_size=8, num_frames=4, embed_dim=32, depth=2, num_heads=4, num_classes=5)
SEG3D = dict(img_size=(32, 32, 16), embed_dims=(8, 16, 24, 32), depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1),
             decoder_dim=16, num_classes=2)


@pytest.mark.parametrize("framewise", [False, True])
def test_timesformer_last_block_is_what_forward_tokens_norms(framewise):
    torch.manual_seed(0)
    extra = dict(framewise=True, mixer="joint") if framewise else {}
    model = create_model("timesformer_tiny", **extra, **TSF).eval()
    x = torch.randn(2, 3, 4, 32, 32)
    assert model.intermediate_names() == ["blocks.0", "blocks.1"]
    with torch.no_grad():
        items = model.forward_intermediates(x)
        tokens, grid, p = model.forward_tokens(x)
    assert [it.name for it in items] == ["blocks.0", "blocks.1"]
    last = items[-1]
    assert last.grid == tuple(grid) == (4, 4, 4)
    assert last.tokens.shape == (2, 64, 32) and last.prefix.shape == (2, p, 32)
    torch.testing.assert_close(model.norm(last.tokens), tokens[:, p:])
    torch.testing.assert_close(model.norm(last.prefix), tokens[:, :p])
    with torch.no_grad():
        (mapped,) = model.forward_intermediates(x, indices=["blocks.1"], output_fmt="NCTHW")
    torch.testing.assert_close(mapped.map, last.tokens.transpose(1, 2).reshape(2, 32, 4, 4, 4))


def test_mvit_stages_equal_forward_stages():
    torch.manual_seed(0)
    model = create_model("mvit_tiny").eval()
    spec = model.input_spec()
    x = torch.randn(1, spec.channels, *spec.size)
    with torch.no_grad():
        items = model.forward_intermediates(x, output_fmt="NCTHW")
        stages = model.forward_stages(x)
    assert [it.name for it in items] == model.intermediate_names() == ["stage1", "stage2", "stage3"]
    for it, st in zip(items, stages):
        assert it.grid == tuple(st.grid)
        torch.testing.assert_close(it.tokens, st.tokens[:, st.num_prefix:])
        torch.testing.assert_close(it.prefix, st.tokens[:, :st.num_prefix])
        torch.testing.assert_close(it.map, st.feature_map())
    assert items[0].tokens.shape[-1] < items[-1].tokens.shape[-1]  # widths grow, grids shrink
    assert items[0].tokens.shape[1] > items[-1].tokens.shape[1]
    last = f"stage2.{len(model.encoder.stages[1].blocks) - 1}"  # a block inside a stage, by name
    assert "stage2.0" in model.inner_intermediate_names() and last in model.inner_intermediate_names()
    with torch.no_grad():
        first, end = model.forward_intermediates(x, indices=["stage2.0", last])
    assert first.grid == end.grid == items[1].grid  # the first block of a stage strides its queries
    torch.testing.assert_close(end.tokens, items[1].tokens)  # MViT's stages have no norm of their own


def test_segformer3d_stages_equal_feature_maps():
    torch.manual_seed(0)
    model = create_model("segformer3d_b0", **SEG3D).eval()
    x = torch.randn(1, model.cfg.in_chans, 32, 32, 16)
    with torch.no_grad():
        items = model.forward_intermediates(x, indices=2, output_fmt="NCHWD")
        maps = model.feature_maps(x)
    assert [it.name for it in items] == ["stage3", "stage4"]
    for it in items:
        assert it.prefix.shape[1] == 0
        torch.testing.assert_close(it.map, maps[it.name])


def test_unknown_level_and_format_name_the_valid_ones():
    model = create_model("timesformer_tiny", **TSF).eval()
    x = torch.randn(1, 3, 4, 32, 32)
    with pytest.raises(UserInputError, match="blocks.0, blocks.1"):
        model.forward_intermediates(x, indices=["stage2"])
    with pytest.raises(ValueError, match="NCTHW"):
        model.forward_intermediates(x, output_fmt="NCHW")
