"""Grid-changing stages: overlapping patch embeddings on odd and non-cubic grids, stages that change the grid,
and a multistage encoder that reports every stage's (tokens, grid)."""

import pytest
import torch
from torch import nn

from spatiotemporal.layers import (
    Block,
    MultiStageEncoder,
    OverlapPatchEmbed,
    Stage,
    pixels_to_tokens,
    stage_layout,
    video_layout,
)


@pytest.mark.parametrize("shape,ndim,kernel,stride", [
    ((1, 33, 47), 2, 7, 4),  # image, odd sizes
    ((4, 17, 9), 2, 3, 2),  # video: time keeps its length
    ((13, 20, 7), 3, 3, 2),  # non-cubic volume
    ((9, 16, 16), 3, 3, (1, 2, 2)),  # per-axis strides
])
def test_overlap_patch_embed_grid_matches_the_convolution(shape, ndim, kernel, stride):
    emb = OverlapPatchEmbed(5, 8, kernel, stride, ndim=ndim)
    x = torch.randn(2, 1 + shape[0] * shape[1] * shape[2], 5)
    y, grid = emb(x, shape, num_prefix=1)
    conv = emb.proj
    ref = conv(x[:, 1:].transpose(1, 2).reshape(2, 5, *shape)) if ndim == 3 else \
        conv(x[:, 1:].reshape(2, shape[0], shape[1] * shape[2], 5).permute(0, 1, 3, 2)
             .reshape(2 * shape[0], 5, shape[1], shape[2]))
    expected = tuple(ref.shape[2:]) if ndim == 3 else (shape[0], *ref.shape[2:])
    assert grid == expected and y.shape == (2, 1 + grid[0] * grid[1] * grid[2], 8)


class _Halve(nn.Module):
    """A block that changes the grid (strides the last two axes by 2): what a pooling-attention block does."""

    changes_grid = True

    def forward(self, x, grid, num_prefix):
        prefix, tokens = x[:, :num_prefix], x[:, num_prefix:]
        g = tokens.reshape(x.shape[0], *grid, -1)[:, :, ::2, ::2]
        return torch.cat([prefix, g.flatten(1, 3)], 1), (grid[0], g.shape[2], g.shape[3])


def test_multistage_encoder_reports_every_stage():
    x, grid = pixels_to_tokens(torch.randn(2, 3, 4, 32, 24))
    assert grid == (4, 32, 24) and x.shape == (2, 4 * 32 * 24, 3)
    e1 = OverlapPatchEmbed(3, 16, 7, 4)
    g1 = e1.out_grid(grid)
    s1 = Stage([Block(16, num_heads=2, layout=stage_layout(("t", "h", "w"), g1), mixer="divided")], e1,
               nn.LayerNorm(16))
    g2 = (g1[0], (g1[1] + 1) // 2, (g1[2] + 1) // 2)
    s2 = Stage([_Halve(), Block(16, num_heads=2, layout=video_layout(*g2), mixer="joint")])
    outs = MultiStageEncoder([s1, s2])(x, grid)
    assert [o.grid for o in outs] == [(4, 8, 6), (4, 4, 3)]
    assert outs[1].feature_map().shape == (2, 16, 4, 4, 3)
    outs[1].tokens.mean().backward()
