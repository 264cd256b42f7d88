"""FLOPs counted with torch.utils.flop_counter equal the formulas of ``docs/mixers.md``, and those of the MLP-Mixer and
ConvMixer mixers (in the docstrings of ``layers/token_mlp.py`` and ``layers/convmixer.py``)."""

import pytest
import torch

from spatiotemporal.layers import (
    AxesTokenMLP,
    ConvMixerMixer,
    ConvMixerPointwise,
    DividedAttention,
    GridLayout,
    JointAttention,
    MixerTokenMLP,
    SRAttention,
    XCAttention,
    video_layout,
)
from spatiotemporal.layers.flops import count_flops
from spatiotemporal.layers.xca import XCA


def _flops(module, *args):
    with torch.no_grad():
        return count_flops(lambda: module(*args))


def test_paper_sizes_t8_224():
    """d=768, h=12, T=8, N=196 (L=1568): joint 15.0 G, divided 17.6 G, XCA 7.7 G (``docs/mixers.md``)."""
    t, n, d, h = 8, 196, 768, 12
    L = t * n
    x = torch.randn(1, L, d)
    lay = video_layout(t, 14, 14)
    joint = _flops(JointAttention(d, num_heads=h, layout=lay), x, (t, 14, 14), 0)
    divided = _flops(DividedAttention(d, num_heads=h, layout=lay), x, (t, 14, 14), 0)
    xca = _flops(XCA(d, h), x)
    assert joint == 8 * L * d**2 + 4 * L**2 * d
    assert divided == 18 * L * d**2 + 4 * L * d * (t + n)
    assert xca == 8 * L * d**2 + 4 * L * d**2 // h
    assert (round(joint / 1e9, 1), round(divided / 1e9, 1), round(xca / 1e9, 1)) == (15.0, 17.6, 7.7)


@pytest.mark.parametrize("grid", [(2, 8, 8), (4, 6, 10)])
def test_joint_and_divided_formulas_on_other_grids(grid):
    d, h = 64, 4
    t, n = grid[0], grid[1] * grid[2]
    L = t * n
    x = torch.randn(1, L, d)
    lay = video_layout(*grid)
    assert _flops(JointAttention(d, num_heads=h, layout=lay), x, grid, 0) == 8 * L * d**2 + 4 * L**2 * d
    assert _flops(DividedAttention(d, num_heads=h, layout=lay), x, grid, 0) == 18 * L * d**2 + 4 * L * d * (t + n)


@pytest.mark.parametrize("ratio", [2, 4])
def test_sra_2d_and_3d_formulas(ratio):
    d, h = 64, 4
    grid = (8, 8, 8)
    L = 512
    x = torch.randn(1, L, d)
    lay = GridLayout(("d", "h", "w"), grid)
    f2 = _flops(SRAttention(d, num_heads=h, layout=lay, sr_ratio=ratio, ndim=2), x, grid, 0)
    f3 = _flops(SRAttention(d, num_heads=h, layout=lay, sr_ratio=ratio, ndim=3), x, grid, 0)
    r2, r3 = ratio**2, ratio**3
    assert f2 == 4 * L * d**2 + 2 * L * d**2 + 4 * (L // r2) * d**2 + 4 * L * L * d // r2
    assert f3 == 4 * L * d**2 + 2 * L * d**2 + 4 * (L // r3) * d**2 + 4 * L * L * d // r3


def test_sdpa_kernel_is_counted_with_gradients():
    """With gradients enabled attention goes through SDPA's CPU kernel, which must still be counted."""
    d, h, L = 64, 4, 128
    x = torch.randn(1, L, d)
    m = JointAttention(d, num_heads=h, layout=video_layout(1, 8, 16))
    assert count_flops(lambda: m(x, (1, 8, 16), 0)) == 8 * L * d**2 + 4 * L**2 * d


@pytest.mark.parametrize("rel_pos", [False, True])
def test_pooling_attention_formula(rel_pos):
    """``docs/mixers.md``, MViT pooling: projections + pooling convs + 4 (L/Πs_q)(L/Πs_kv) d, counted exactly; with the
    relative positions, their q·R products and the extra q/k columns SDPA sees (padded to a multiple of 8)."""
    from spatiotemporal.layers import PoolingAttention

    grid, d_in, d, h, p = (4, 16, 16), 48, 96, 2, 1
    sq, skv, k3 = (1, 2, 2), (1, 4, 4), 27
    m = PoolingAttention(d_in, num_heads=h, layout=video_layout(*grid), dim_out=d, stride_q=sq, stride_kv=skv,
                         rel_pos=rel_pos)
    n = grid[0] * grid[1] * grid[2]
    q_grid, k_grid = (4, 8, 8), (4, 4, 4)
    nq, nk = 256, 64
    lq, lk, L = p + nq, p + nk, p + n
    x = torch.randn(1, L, d_in)
    counted = _flops(lambda xx: m.pool_attention(xx, grid, p), x)
    projections = 2 * L * d_in * 3 * d + 2 * lq * d * d
    pooling = 2 * k3 * d * (nq + 2 * nk)
    expected = projections + pooling + 4 * lq * lk * d  # the formula
    if rel_pos:
        extra = sum(k_grid)
        width = d // h + extra + (-(d // h + extra) % 8)
        expected += 2 * nq * d * extra + 4 * lq * lk * h * (width - d // h)
    assert counted == expected
    assert m.out_grid(grid) == q_grid


@pytest.mark.parametrize("layout", [video_layout(4, 6, 10), GridLayout(("h", "w", "d"), (6, 4, 5))])
def test_mlp_mixer_formulas(layout):
    """Full grid ``4 L h_s d``; per axis ``sum_a 4 L h_a d`` (every axis longer than 1), ``h = token_ratio * d``."""
    d = 64
    grid = layout.size
    L = grid[0] * grid[1] * grid[2]
    x = torch.randn(1, L, d)
    full = _flops(MixerTokenMLP(d, num_heads=4, layout=layout, token_ratio=0.5), x, grid, 0)
    axes = _flops(AxesTokenMLP(d, num_heads=4, layout=layout, token_ratio=0.25), x, grid, 0)
    assert full == 4 * L * (d // 2) * d
    assert axes == 3 * 4 * L * (d // 4) * d


@pytest.mark.parametrize("conv,kernel_flops", [("2d", 7**2), ("2+1d", 7**2 + 3), ("3d", 7**3)])
def test_convmixer_formulas(conv, kernel_flops):
    """Depthwise ``2 L d k^2`` (2D), ``2 L d (k^2 + k_t)`` ((2+1)D), ``2 L d k^3`` (3D); pointwise ``2 L d^2``."""
    d, grid = 32, (4, 6, 5)
    L = 4 * 6 * 5
    x = torch.randn(1, L, d)
    m = ConvMixerMixer(d, num_heads=1, layout=video_layout(*grid), kernel_size=7, conv=conv, temporal_kernel=3)
    assert _flops(m, x, grid, 0) == 2 * L * d * kernel_flops
    assert _flops(ConvMixerPointwise(d, hidden_dim=4 * d), x, grid, 0) == 2 * L * d * d


@pytest.mark.parametrize("ndim,lpi", [(2, 2 * 2 * 9), (3, 2 * 2 * 27)])
def test_xca_mixer_with_lpi_formula(ndim, lpi):
    """The ``xca`` mixer: XCA ``8 L d^2 + 4 L d^2 / h`` plus LPI's two depthwise 3x3 (x3) convolutions."""
    d, h, grid = 64, 4, (4, 6, 5)
    L = 4 * 6 * 5
    m = XCAttention(d, num_heads=h, layout=video_layout(*grid), ndim=ndim)
    assert _flops(m, torch.randn(1, L, d), grid, 0) == 8 * L * d**2 + 4 * L * d**2 // h + lpi * L * d
