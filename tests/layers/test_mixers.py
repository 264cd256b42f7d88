"""Every mixer on 2D, video and non-cubic 3D grids, plus tests of what each one means."""

import pytest
import torch
from timm.models.xcit import XCA as TimmXCA

from spatiotemporal.layers import (
    MIXERS,
    Block,
    DividedAttention,
    GridLayout,
    JointAttention,
    SpaceOnlyAttention,
    SRAttention,
    XCAttention,
    build_mixer,
    image_layout,
    video_layout,
    volume_layout,
)
from spatiotemporal.layers.xca import XCA

LAYOUTS = {"image": image_layout(4, 4), "video": video_layout(3, 4, 4), "volume": volume_layout(4, 6, 2)}
VIDEO = video_layout(3, 4, 4)


def _needs_slice_axis(name, kind):
    return name == "divided" and kind == "image"


@pytest.mark.parametrize("name", sorted(MIXERS))
@pytest.mark.parametrize("kind", sorted(LAYOUTS))
@pytest.mark.parametrize("num_prefix", [0, 1])
def test_every_mixer_forward_backward(name, kind, num_prefix):
    layout = LAYOUTS[kind]
    grid = layout.size
    ffn = "mixffn" if kind == "volume" else "mlp"
    kw = {"axis": 0} if _needs_slice_axis(name, kind) else {}
    blk = Block(32, num_heads=4, layout=layout, mixer=name, ffn=ffn, mixer_kwargs=kw, init_values=1e-1,
                drop_path=0.1)
    x = torch.randn(2, num_prefix + grid[0] * grid[1] * grid[2], 32, requires_grad=True)
    y = blk(x, grid, num_prefix)
    y.square().mean().backward()
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for n, p in blk.named_parameters():
        assert p.grad is not None, f"{name}: no gradient for {n}"


def test_wrong_token_count_is_a_clear_error():
    with pytest.raises(ValueError, match="token count"):
        JointAttention(16, num_heads=2, layout=image_layout(3, 3))(torch.randn(1, 10, 16), (1, 3, 3), 0)


def test_misspelt_mixer_argument_is_an_error_that_lists_the_valid_ones():
    msg = r"unknown argument\(s\) \['sr_ration'\].*sr_ratio.*Valid: \['sr_ratio', 'ndim'\]"
    with pytest.raises(TypeError, match=msg):
        build_mixer("sra", 16, num_heads=2, layout=VIDEO, kwargs={"sr_ration": 4})
    with pytest.raises(TypeError, match="set by the model"):
        build_mixer("joint", 16, num_heads=2, layout=VIDEO, kwargs={"num_heads": 4})
    with pytest.raises(KeyError, match="Did you mean 'divided'"):
        build_mixer("divdied", 16, num_heads=2, layout=VIDEO)


def test_mixer_asked_for_an_axis_it_lacks_is_a_clear_error():
    with pytest.raises(ValueError, match="needs a time or depth axis.*\\('1', 'h', 'w'\\)"):
        build_mixer("divided", 16, num_heads=2, layout=image_layout(4, 4))
    with pytest.raises(ValueError, match="axis must be 0, 1 or 2"):
        build_mixer("divided", 16, num_heads=2, layout=VIDEO, kwargs={"axis": 3})
    with pytest.raises(ValueError, match="axis must be 0, 1 or 2"):
        build_mixer("space_only", 16, num_heads=2, layout=VIDEO, kwargs={"axis": -1})


def test_layout_gives_the_slice_axis():
    assert DividedAttention(8, num_heads=2, layout=VIDEO).axis == 0
    assert DividedAttention(8, num_heads=2, layout=volume_layout(2, 3, 4)).axis == 2  # MONAI (H, W, D): depth last
    assert SpaceOnlyAttention(8, num_heads=2, layout=GridLayout(("d", "h", "w"), (2, 3, 4))).axis == 0
    assert XCAttention(8, num_heads=2, layout=volume_layout(2, 3, 4)).lpi.ndim == 3
    assert XCAttention(8, num_heads=2, layout=VIDEO).lpi.ndim == 2


def _copy_attention(dst, src):
    dst.norm.load_state_dict(src.norm.state_dict())
    dst.attn.load_state_dict(src.attn.state_dict())


def test_divided_with_one_frame_equals_spatial_attention():
    torch.manual_seed(0)
    layout = video_layout(1, 4, 4)
    spatial = SpaceOnlyAttention(32, num_heads=4, layout=layout)
    divided = DividedAttention(32, num_heads=4, layout=layout)  # temporal_fc starts at zero, as in TimeSformer
    _copy_attention(divided, spatial)
    x = torch.randn(2, 1 + 16, 32)
    torch.testing.assert_close(divided(x, (1, 4, 4), 1), spatial(x, (1, 4, 4), 1), rtol=0, atol=1e-6)


def test_space_only_on_one_slice_equals_joint_attention():
    torch.manual_seed(0)
    layout = image_layout(3, 4)
    joint, space = JointAttention(32, num_heads=4, layout=layout), SpaceOnlyAttention(32, num_heads=4, layout=layout)
    _copy_attention(space, joint)
    x = torch.randn(2, 1 + 12, 32)
    torch.testing.assert_close(space(x, (1, 3, 4), 1), joint(x, (1, 3, 4), 1), rtol=0, atol=1e-6)


def test_divided_temporal_stage_mixes_only_along_its_axis():
    """With the spatial projection at zero, token (t, h, w) depends only on tokens (., h, w)."""
    torch.manual_seed(0)
    for axis, grid in ((0, (3, 2, 2)), (2, (2, 2, 3))):
        m = DividedAttention(8, num_heads=2, layout=video_layout(*grid), axis=axis)
        _check_divided_temporal_locality(m, grid, axis)


def test_unetr_divided_attends_along_depth_by_default():
    """MONAI's (H, W, D) grid: the model tells the mixer that depth is the last axis."""
    from spatiotemporal import create_model

    torch.manual_seed(0)
    m = create_model("unetr_tiny", mixer="divided", img_size=(16, 16, 24)).encoder.blocks[0].mixer
    _check_divided_temporal_locality(m, (2, 2, 3), 2)


def _check_divided_temporal_locality(m, grid, axis):
    with torch.no_grad():
        torch.nn.init.normal_(m.temporal_fc.weight)
        torch.nn.init.zeros_(m.attn.proj.weight)
        torch.nn.init.zeros_(m.attn.proj.bias)
    dim = m.temporal_fc.weight.shape[0]
    x = torch.randn(1, 12, dim)
    jac = torch.autograd.functional.jacobian(lambda t: m(t, grid, 0), x)[0, :, :, 0, :, :]
    dep = jac.abs().sum((1, 3)) > 0
    idx = torch.arange(12).reshape(grid)
    for i in range(12):
        pos = [int(v) for v in (idx == i).nonzero()[0]]
        expected = torch.zeros(12, dtype=torch.bool)
        sl = [slice(None) if a == axis else pos[a] for a in range(3)]
        expected[idx[tuple(sl)].flatten()] = True
        assert torch.equal(dep[i], expected), (axis, i)


def test_divided_class_token_is_excluded_from_temporal_attention_and_averaged():
    torch.manual_seed(0)
    m = DividedAttention(8, num_heads=2, layout=video_layout(3, 2, 2))
    torch.nn.init.normal_(m.temporal_fc.weight)
    x = torch.randn(1, 1 + 3 * 4, 8)
    y = m(x, (3, 2, 2), 1)
    # class output = mean over frames of per-frame spatial attention with the class token copied in
    frames = []
    xt = x[:, 1:] + m.temporal_fc(
        m.temporal_attn(m.temporal_norm(x[:, 1:]).reshape(1, 3, 4, 8).transpose(1, 2).reshape(4, 3, 8))
        .reshape(1, 4, 3, 8).transpose(1, 2).reshape(1, 12, 8))
    for t in range(3):
        seq = torch.cat([x[:, :1], xt[:, 4 * t:4 * t + 4]], dim=1)
        frames.append(m.attn(m.norm(seq))[:, 0])
    torch.testing.assert_close(y[:, 0], torch.stack(frames).mean(0), rtol=0, atol=1e-6)


@pytest.mark.parametrize("ndim", [2, 3])
def test_sra_ratio_one_equals_plain_attention(ndim):
    torch.manual_seed(0)
    plain = JointAttention(32, num_heads=4, layout=VIDEO)
    sra = SRAttention(32, num_heads=4, layout=VIDEO, sr_ratio=1, ndim=ndim)
    sra.norm.load_state_dict(plain.norm.state_dict())
    w, b = plain.attn.qkv.weight.detach(), plain.attn.qkv.bias.detach()
    sra.q.load_state_dict({"weight": w[:32], "bias": b[:32]})
    sra.kv.load_state_dict({"weight": w[32:], "bias": b[32:]})
    sra.proj.load_state_dict(plain.attn.proj.state_dict())
    x = torch.randn(2, 1 + 2 * 4 * 4, 32)
    torch.testing.assert_close(sra(x, (2, 4, 4), 1), plain(x, (2, 4, 4), 1), rtol=0, atol=1e-6)


def test_sra_reduces_keys_by_the_ratio():
    m = SRAttention(16, num_heads=2, layout=GridLayout(("d", "h", "w"), (4, 4, 6)), sr_ratio=2, ndim=3)
    seen = {}
    m.kv.register_forward_hook(lambda mod, inp, out: seen.update(n=inp[0].shape[1]))
    m(torch.randn(1, 1 + 4 * 4 * 6, 16), (4, 4, 6), 1)
    assert seen["n"] == 1 + 2 * 2 * 3
    m2 = SRAttention(16, num_heads=2, layout=GridLayout(("t", "h", "w"), (4, 4, 6)), sr_ratio=2, ndim=2)
    m2.kv.register_forward_hook(lambda mod, inp, out: seen.update(n2=inp[0].shape[1]))
    m2(torch.randn(1, 4 * 4 * 6, 16), (4, 4, 6), 0)
    assert seen["n2"] == 4 * 2 * 3


def test_xca_equals_timm_xca_with_its_weights():
    torch.manual_seed(0)
    ref = TimmXCA(48, num_heads=4, qkv_bias=True).eval()
    ref.fused_attn = False
    with torch.no_grad():
        ref.temperature.uniform_(0.5, 2.0)
    ours = XCA(48, 4).eval()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 50, 48)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-5)


def test_xca_zero_channel_half_precision_stays_finite():
    """q/k are normalised in fp32: an all-zero channel in fp16 must not give NaN."""
    torch.manual_seed(0)
    m = XCA(16, 2)
    with torch.no_grad():
        m.qkv.weight[0].zero_()
        m.qkv.bias[0] = 0
        m.qkv.weight[16].zero_()
        m.qkv.bias[16] = 0
    x = torch.randn(1, 64, 16)
    y = m.half()(x.half())
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("ndim,grid", [(2, (2, 4, 4)), (3, (2, 4, 6))])
def test_lpi_is_local(ndim, grid):
    """LPI (two 3-wide depthwise convs) reaches at most 2 grid steps away; 2D stays within its slice."""
    torch.manual_seed(0)
    m = XCAttention(8, num_heads=2, layout=video_layout(*grid), ndim=ndim).eval()
    torch.nn.init.zeros_(m.attn.proj.weight)
    torch.nn.init.zeros_(m.attn.proj.bias)
    n = grid[0] * grid[1] * grid[2]
    x = torch.randn(1, n, 8)
    jac = torch.autograd.functional.jacobian(lambda t: m(t, grid, 0), x)[0, :, :, 0, :, :].abs().sum((1, 3))
    idx = torch.stack(torch.meshgrid(*[torch.arange(g) for g in grid], indexing="ij"), -1).reshape(n, 3)
    dist = (idx[:, None] - idx[None]).abs()
    off_diag = dist.amax(-1) > 2
    if ndim == 2:
        off_diag |= dist[..., 0] > 0
    assert jac[off_diag].abs().max() == 0
    assert (jac[(dist.amax(-1) == 1) & (dist[..., 0] == 0)] > 0).all()
