"""MLP-Mixer and ConvMixer token mixing: what each one mixes, the grid-resampling rule, and BatchNorm on tokens."""

import pytest
import torch
from timm.models.mlp_mixer import MixerBlock

from spatiotemporal.layers import (
    AxesTokenMLP,
    Block,
    ConvMixerMixer,
    MixerTokenMLP,
    TokenBatchNorm,
    image_layout,
    resize_token_weights,
    video_layout,
    volume_layout,
)


def _dependence(m, grid, dim):
    """``dep[i, j]``: output token i depends on input token j (non-zero Jacobian)."""
    n = grid[0] * grid[1] * grid[2]
    x = torch.randn(1, n, dim)
    jac = torch.autograd.functional.jacobian(lambda t: m(t, grid, 0), x)[0, :, :, 0, :, :]
    return jac.abs().sum((1, 3)) > 0, torch.stack(torch.meshgrid(*[torch.arange(g) for g in grid], indexing="ij"),
                                                  -1).reshape(n, 3)


def test_full_grid_token_mlp_is_timms_mixer_block():
    torch.manual_seed(0)
    ref = MixerBlock(32, 16).eval()
    blk = Block(32, num_heads=1, layout=image_layout(4, 4), mixer="mlp_mixer").eval()
    sd = {k.replace("norm1.", "mixer.norm.").replace("mlp_tokens.", "mixer.mlp_tokens.").replace("norm2.", "ffn.norm.")
          .replace("mlp_channels.", "ffn."): v for k, v in ref.state_dict().items()}
    blk.load_state_dict(sd)
    x = torch.randn(2, 16, 32)
    with torch.no_grad():
        torch.testing.assert_close(blk(x, (1, 4, 4), 0), ref(x), rtol=0, atol=1e-6)


def test_another_grid_resamples_the_token_weights():
    torch.manual_seed(0)
    m = MixerTokenMLP(16, num_heads=1, layout=video_layout(2, 4, 4))
    y = m(torch.randn(2, 3 * 6 * 5, 16), (3, 6, 5), 0)
    assert y.shape == (2, 90, 16)
    w1, w2, b2 = resize_token_weights(m.mlp_tokens.fc1.weight, m.mlp_tokens.fc2.weight, m.mlp_tokens.fc2.bias,
                                      (2, 4, 4), (3, 6, 5))
    assert w1.shape == (8, 90) and w2.shape == (90, 8) and b2.shape == (90,)
    # from size 1 the resampling repeats, and fc1 is divided by the repeat
    v1, v2, c2 = resize_token_weights(w1[:, :30], w2[:30], b2[:30], (1, 6, 5), (4, 6, 5))
    torch.testing.assert_close(v1, w1[:, :30].repeat(1, 4) / 4)
    torch.testing.assert_close(v2, w2[:30].repeat(4, 1))
    torch.testing.assert_close(c2, b2[:30].repeat(4))
    with pytest.raises(ValueError, match="same number"):
        resize_token_weights(w1, w2, b2, (90,), (3, 6, 5))


def test_per_axis_token_mlp_runs_on_any_grid_and_mixes_one_axis_per_stage():
    torch.manual_seed(0)
    m = AxesTokenMLP(8, num_heads=1, layout=video_layout(3, 4, 4))
    assert len(m.mlps) == 3 and AxesTokenMLP(8, num_heads=1, layout=image_layout(4, 4)).axes == [1, 2]
    assert m(torch.randn(1, 1 + 5 * 3 * 7, 8), (5, 3, 7), 1).shape == (1, 106, 8)
    with torch.no_grad():  # only the time MLP on: token (t, h, w) depends on (., h, w) only
        for mlp in m.mlps[1:]:
            mlp.fc2.weight.zero_()
            mlp.fc2.bias.zero_()
    dep, idx = _dependence(m, (3, 2, 2), 8)
    same_column = (idx[:, None, 1:] == idx[None, :, 1:]).all(-1)
    assert torch.equal(dep, same_column)


@pytest.mark.parametrize("conv,reach", [("2d", (0, 1, 1)), ("2+1d", (1, 1, 1)), ("3d", (1, 1, 1))])
def test_convmixer_reaches_its_kernel(conv, reach):
    torch.manual_seed(0)
    m = ConvMixerMixer(4, num_heads=1, layout=video_layout(4, 4, 4), kernel_size=3, conv=conv).eval()
    if conv == "2+1d":
        torch.nn.init.normal_(m.conv_t.weight)  # starts as the identity
    dep, idx = _dependence(m, (4, 4, 4), 4)
    dist = (idx[:, None] - idx[None]).abs()
    expected = (dist <= torch.tensor(reach)).all(-1)
    assert torch.equal(dep, expected)


def test_convmixer_defaults_by_layout_and_prefix_gets_the_mean():
    assert ConvMixerMixer(4, num_heads=1, layout=image_layout(4, 4)).mode == "2d"
    assert ConvMixerMixer(4, num_heads=1, layout=video_layout(2, 4, 4)).mode == "2+1d"
    m = ConvMixerMixer(4, num_heads=1, layout=volume_layout(4, 4, 2))
    assert m.mode == "3d" and m.axis == 2
    y = m(torch.randn(2, 1 + 32, 4), (4, 4, 2), 1)
    torch.testing.assert_close(y[:, 0], y[:, 1:].mean(1))
    with pytest.raises(ValueError, match="conv must be one of"):
        ConvMixerMixer(4, num_heads=1, layout=image_layout(4, 4), conv="1d")


def test_token_batchnorm_is_batchnorm2d_on_the_map():
    torch.manual_seed(0)
    ours, ref = TokenBatchNorm(6), torch.nn.BatchNorm2d(6)
    x = torch.randn(3, 6, 4, 5)
    y = ours(x.flatten(2).transpose(1, 2))
    torch.testing.assert_close(y, ref(x).flatten(2).transpose(1, 2))
    torch.testing.assert_close(ours.running_var, ref.running_var)
    assert set(ours.state_dict()) == set(ref.state_dict())
