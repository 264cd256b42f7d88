"""Grid convolutions under CPU bf16 autocast: fp32 where the grid is smaller than the kernel (oneDNN bug guard)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spatiotemporal.layers import GridLayout
from spatiotemporal.layers.conv_grid import conv_nd
from spatiotemporal.layers.ffn import MixFFN


def _mixffn_grads(grid, amp: bool, seed: int = 0):
    """The dwconv weight grad of a 3D Mix-FFN on ``grid`` and the dtype its dwconv computed in."""
    torch.manual_seed(seed)
    ffn = MixFFN(32, hidden_dim=128, layout=GridLayout(("d", "h", "w"), grid))
    x = torch.randn(2, grid[0] * grid[1] * grid[2], 32)
    seen = []
    ffn.dwconv.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        y = ffn(x, grid)
    y.float().square().sum().backward()
    return ffn.dwconv.weight.grad, seen[0]


def test_mixffn_dwconv_grad_under_cpu_bf16_matches_fp32_on_a_2cube_grid():
    """SegFormer3D's stage-4 grid at a 48^3 ROI is 2x2x2: oneDNN's bf16 weight grad there was wrong in ~1/3 of
    its entries (relative error ~1, on every run) and read stale memory (up to 1e37, then inf in AdamW)."""
    ref, ref_dtype = _mixffn_grads((2, 2, 2), amp=False)
    got, dtype = _mixffn_grads((2, 2, 2), amp=True)
    assert ref_dtype == torch.float32 and dtype == torch.float32  # the guarded path computes in fp32
    assert torch.isfinite(got).all()
    assert ((got - ref).norm() / ref.norm()).item() < 0.05


def test_grid_conv_keeps_bf16_where_the_grid_covers_the_kernel():
    _, dtype = _mixffn_grads((3, 4, 4), amp=True)
    assert dtype == torch.bfloat16


@pytest.mark.parametrize("ndim,shape,expect", [(3, (2, 5, 5), torch.float32), (3, (5, 5, 5), torch.bfloat16),
                                               (2, (6, 1), torch.float32), (2, (6, 6), torch.bfloat16)])
def test_grid_conv_dtype_under_cpu_autocast(ndim, shape, expect):
    conv = conv_nd(ndim)(8, 8, 3, padding=1)
    assert isinstance(conv, nn.Conv3d if ndim == 3 else nn.Conv2d)
    x = torch.randn(1, 8, *shape)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(x)
    assert y.dtype == expect
    assert torch.allclose(y.float(), conv(x), atol=0.05, rtol=0.05)
    assert conv(x).dtype == torch.float32  # no autocast: untouched
