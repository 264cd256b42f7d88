"""The ``attention_matrix`` hook: with values and output projections set to the identity and no norms, a mixer's
update is its token-to-token matrices applied to its input, so the matrices are checked against the mixer's own
forward (prefix averaging and the axis order included); mixers without softmax attention give None."""

import pytest
import torch
from torch import nn

from spatiotemporal.layers import MultiHeadAttention, build_mixer, record_attention, video_layout, volume_layout

DIM = 8


def _transparent(mixer: nn.Module) -> nn.Module:
    """Every attention's value and output projections the identity (queries and keys stay random)."""
    for m in mixer.modules():
        if isinstance(m, MultiHeadAttention):
            with torch.no_grad():
                m.qkv.weight[2 * DIM:] = torch.eye(DIM)
                m.qkv.bias[2 * DIM:] = 0
                m.proj.weight.copy_(torch.eye(DIM))
                m.proj.bias.zero_()
    if hasattr(mixer, "temporal_fc"):
        with torch.no_grad():
            mixer.temporal_fc.weight.copy_(torch.eye(DIM))
            mixer.temporal_fc.bias.zero_()
    return mixer


@pytest.mark.parametrize("layout", [video_layout(3, 2, 2), volume_layout(2, 3, 2)], ids=["video", "volume"])
@pytest.mark.parametrize("num_prefix", [0, 1])
@pytest.mark.parametrize("name", ["joint", "space_only", "divided"])
def test_matrices_reproduce_the_mixer(name, num_prefix, layout):
    torch.manual_seed(0)
    mixer = _transparent(build_mixer(name, DIM, num_heads=1, layout=layout, norm_layer=nn.Identity)).eval()
    grid = layout.size
    x = torch.randn(2, num_prefix + grid[0] * grid[1] * grid[2], DIM)
    with torch.no_grad(), record_attention() as store:
        out = mixer(x, grid, num_prefix)
    steps = mixer.attention_matrix(list(store), grid, num_prefix)
    for m in steps:
        assert m.shape == (2, x.shape[1], x.shape[1])
        assert torch.allclose(m.sum(-1), torch.ones(2, x.shape[1]), atol=1e-5)
    if name != "divided":
        assert len(steps) == 1 and torch.allclose(out, steps[0] @ x, atol=1e-5)
        return
    temporal, spatial = steps  # temporal first: prefix rows untouched; then slices over the updated tokens
    assert torch.equal(temporal[:, :num_prefix, :num_prefix], torch.eye(num_prefix).expand(2, -1, -1))
    dt = (temporal @ x)[:, num_prefix:]
    xs = torch.cat([x[:, :num_prefix], x[:, num_prefix:] + dt], dim=1)
    want = torch.cat([torch.zeros_like(x[:, :num_prefix]), dt], dim=1) + spatial @ xs
    assert torch.allclose(out, want, atol=1e-5)


@pytest.mark.parametrize("name", ["xca", "mlp_mixer", "convmixer"])
def test_mixers_without_softmax_token_attention_give_none(name):
    layout = video_layout(2, 2, 2)
    mixer = build_mixer(name, DIM, num_heads=2, layout=layout)
    assert mixer.attention_matrix([], layout.size, 0) is None
