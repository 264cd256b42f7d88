"""MViTv2 pooling attention: exact against torchvision's MultiscaleAttention, on images, videos and volumes (odd
and non-cubic grids), the class token kept out of pooling, and its place in the mixer contract."""

from functools import partial

import pytest
import torch
from testing_utils import randomize_
from torchvision.models.video.mvit import MultiscaleAttention

from spatiotemporal.layers import (
    Block,
    GridLayout,
    MultiScaleBlock,
    PooledSkip,
    PoolingAttention,
    build_mixer,
    image_layout,
    video_layout,
)

LN = partial(torch.nn.LayerNorm, eps=1e-6)


def _torchvision_names(k: str) -> str:
    for a, b in (("project.0", "proj"), (".pool.weight", ".weight"), ("pool_q.norm_act.0", "norm_q"),
                 ("pool_k.norm_act.0", "norm_k"), ("pool_v.norm_act.0", "norm_v")):
        k = k.replace(a, b)
    return k


@pytest.mark.parametrize("grid,sq,skv,dim,dim_out,heads,rel,res", [
    ((4, 8, 8), (1, 2, 2), (1, 4, 4), 32, 64, 2, True, True),  # a stage transition of MViTv2
    ((4, 8, 8), (1, 1, 1), (1, 2, 2), 32, 32, 2, True, True),  # a block inside a stage
    ((4, 8, 8), (2, 2, 2), (1, 1, 1), 16, 16, 1, True, True),  # temporal query stride
    ((5, 7, 7), (1, 2, 2), (1, 2, 2), 16, 32, 2, True, True),  # odd grid: tables interpolated
    ((4, 6, 6), (1, 2, 2), (1, 2, 2), 16, 16, 2, False, False),  # MViT v1 (no relative positions, no residual)
])
def test_equals_torchvision_multiscale_attention(grid, sq, skv, dim, dim_out, heads, rel, res):
    ref = MultiscaleAttention(list(grid), dim, dim_out, heads, [3, 3, 3], [3, 3, 3], list(sq), list(skv), res, False,
                              rel, norm_layer=LN).eval()
    randomize_(ref)
    ours = PoolingAttention(dim, num_heads=heads, layout=video_layout(*grid), dim_out=dim_out, stride_q=sq,
                            stride_kv=skv, rel_pos=rel, residual_pool=res, norm_layer=LN).eval()
    missing = ours.load_state_dict({_torchvision_names(k): v for k, v in ref.state_dict().items()}, strict=False)
    assert missing.missing_keys == ["norm.weight", "norm.bias"] and not missing.unexpected_keys  # our pre-norm
    x = torch.randn(2, 1 + grid[0] * grid[1] * grid[2], dim)
    with torch.no_grad():
        a, ga = ref(x, grid)
        b, gb = ours.pool_attention(x, grid, 1)
    assert tuple(ga) == gb == ours.out_grid(grid)
    assert (a - b).abs().max() <= 1e-5 and a.abs().max() > 0.1


@pytest.mark.parametrize("layout,grid,sq,ndim", [
    (image_layout(9, 7), (1, 9, 7), (1, 2, 2), 2),  # image: 2D pooling
    (video_layout(3, 7, 5), (3, 7, 5), (1, 2, 2), 3),  # odd video grid
    (GridLayout(("h", "w", "d"), (6, 10, 4)), (6, 10, 4), (2, 2, 2), 3),  # non-cubic MONAI volume
])
def test_any_grid_class_token_kept_out_of_pooling(layout, grid, sq, ndim):
    m = PoolingAttention(16, num_heads=2, layout=layout, dim_out=32, stride_q=sq, stride_kv=2 if ndim == 3 else
                         (1, 2, 2))
    assert m.ndim == ndim and isinstance(m.pool_q, torch.nn.Conv2d if ndim == 2 else torch.nn.Conv3d)
    assert {n for _, n in m.rel_axes} == {f"rel_pos_{a}" for a in layout.axes if a != "1"}
    x = torch.randn(2, 1 + grid[0] * grid[1] * grid[2], 16, requires_grad=True)
    y, g = m.pool_attention(x, grid, 1)
    assert y.shape == (2, 1 + g[0] * g[1] * g[2], 32) and g == m.out_grid(grid)
    y.sum().backward()
    # the class token is normalised with the pooled q but never convolved: its pooled q is norm_q(its own q)
    h, d = 2, 16
    q = m.qkv(x).reshape(2, x.shape[1], 3, h, d).permute(2, 0, 3, 1, 4)[0]
    pooled, _ = m._pool(q, "q", grid, 1)
    assert torch.allclose(pooled[:, :, 0], m.norm_q(q[:, :, 0]))


def test_per_frame_pooling_equals_3d_pooling_with_temporal_kernel_1():
    lay = video_layout(4, 8, 8)
    kw = dict(num_heads=2, layout=lay, kernel_q=(1, 3, 3), kernel_kv=(1, 3, 3), stride_q=(1, 2, 2),
              stride_kv=(1, 2, 2))
    m2, m3 = PoolingAttention(16, ndim=2, **kw).eval(), PoolingAttention(16, ndim=3, **kw).eval()
    sd = {k: v.unsqueeze(2) if k.startswith("pool_") else v for k, v in m2.state_dict().items()}
    m3.load_state_dict(sd)
    x = torch.randn(2, 1 + 256, 16)
    with torch.no_grad():
        a, ga = m2.pool_attention(x, (4, 8, 8), 1)
        b, gb = m3.pool_attention(x, (4, 8, 8), 1)
    assert ga == gb == (4, 4, 4) and (a - b).abs().max() <= 1e-5
    with pytest.raises(ValueError, match="ndim=2 pools each slice"):
        PoolingAttention(16, num_heads=2, layout=lay, ndim=2, kernel_q=(3, 3, 3))


def test_follows_the_mixer_contract_in_any_block():
    lay = video_layout(2, 4, 4)
    blk = Block(32, num_heads=2, layout=lay, mixer="pooling", mixer_kwargs={"stride_kv": (1, 2, 2)})
    x = torch.randn(2, 33, 32)
    assert blk(x, (2, 4, 4), 1).shape == x.shape
    assert blk.mixer.no_weight_decay() == {"rel_pos_t", "rel_pos_h", "rel_pos_w"}
    with pytest.raises(ValueError, match="grid-changing block"):
        build_mixer("pooling", 32, num_heads=2, layout=lay, kwargs={"stride_q": (1, 2, 2)})(x, (2, 4, 4), 1)
    with pytest.raises(TypeError, match="Did you mean .*stride_kv"):
        build_mixer("pooling", 32, num_heads=2, layout=lay, kwargs={"stride_vk": 2})


@pytest.mark.parametrize("expand_attn", [True, False])
def test_multiscale_block_changes_grid_and_width(expand_attn):
    blk = MultiScaleBlock(16, 32, num_heads=2, layout=video_layout(4, 9, 9), stride_q=(1, 2, 2),
                          expand_attn=expand_attn, mixer_kwargs={"stride_kv": (1, 3, 3)})
    assert blk.changes_grid and (blk.skip.proj is not None) == expand_attn and (blk.ffn_proj is None) == expand_attn
    x = torch.randn(2, 1 + 4 * 81, 16, requires_grad=True)
    y, g = blk(x, (4, 9, 9), 1)
    assert g == (4, 5, 5) and y.shape == (2, 1 + 100, 32)
    y.mean().backward()


def test_pooled_skip_pools_grid_tokens_only_and_projects_all():
    skip = PooledSkip(8, 12, (1, 2, 2))
    assert skip.kernel == (1, 3, 3)
    x = torch.randn(2, 1 + 3 * 5 * 6, 8)
    y, g = skip(x, (3, 5, 6), 1)
    assert g == (3, 3, 3) and y.shape == (2, 1 + 27, 12)
    assert torch.allclose(y[:, 0], skip.proj(x[:, 0]))
    ref = torch.nn.functional.max_pool3d(skip.proj(x[:, 1:]).transpose(1, 2).reshape(2, 12, 3, 5, 6), (1, 3, 3),
                                         (1, 2, 2), (0, 1, 1))
    assert torch.equal(y[:, 1:], ref.flatten(2).transpose(1, 2))
    same, g2 = PooledSkip(8, 8)(x, (3, 5, 6), 1)
    assert torch.equal(same, x) and g2 == (3, 5, 6)
