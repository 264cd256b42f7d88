"""MViT-UNETR on an input its decoder cannot take: one line naming the sizes that work (was a raw
``RuntimeError: Sizes of tensors must match`` from the Python API)."""

from __future__ import annotations

import pytest
import torch

from spatiotemporal.models import create_model
from spatiotemporal.utils.errors import UserInputError


def test_an_input_not_divisible_by_the_total_stride_is_one_line_naming_the_sizes_that_work():
    model = create_model("mvit_unetr", img_size=(16, 16, 16), embed_dim=8, num_heads=1, depths=(1, 1),
                         stride_kv=(2, 2, 2), feature_size=4, out_channels=2).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 16, 32, 8)).shape == (1, 2, 16, 32, 8)  # multiples of 8 on each axis work
        with pytest.raises(UserInputError) as e:
            model(torch.randn(1, 1, 20, 16, 16))
    assert str(e.value) == ("MViTUNETR: input size (20, 16, 16) (H, W, D) is not divisible by the total stride "
                            "(8, 8, 8) (patch_stride x stride_q^1) on each axis; sizes that work are multiples of "
                            "it per axis, e.g. (16, 16, 16)")
    with pytest.raises(UserInputError, match=r"^MViTUNETR: input size \(16, 16, 12\) "):
        model.feature_map(torch.randn(1, 1, 16, 16, 12))  # the decoder's features too
