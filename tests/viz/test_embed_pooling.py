"""``spatio embed --layer``: a block's output is pooled over the tokens that block really holds. XCiT's class token
joins only after its blocks (class attention), so a block output is all grid tokens: none is taken as a class
token, none is left out of the mean."""

import pytest
import torch

from spatiotemporal.models import create_model
from spatiotemporal.utils.errors import UserInputError
from spatiotemporal.viz.embed_files import pooled_features


@torch.no_grad()
def test_xcit_block_outputs_are_pooled_over_all_their_tokens():
    torch.manual_seed(0)
    model = create_model("xcit_tiny_builtin").eval()
    x = torch.randn(2, 3, 32, 32)
    tokens, grid = model.embed(x)
    _, (block1,) = model.encoder(tokens, grid, 0, collect=(1,))  # (B, N, D): grid tokens only
    assert block1.shape[1] == grid[0] * grid[1] * grid[2]
    for pool in ("default", "mean"):
        torch.testing.assert_close(pooled_features(model, x, layer=1, pool=pool), block1.mean(1))
    with pytest.raises(UserInputError, match="--pool cls: the encoder blocks of XCiT carry no class token"):
        pooled_features(model, x, layer=1, pool="cls")
