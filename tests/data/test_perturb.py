"""The time / depth perturbations of ``spatio probe`` on a tiny tensor."""

import pytest
import torch

from spatiotemporal.data.perturb import (
    VIDEO_PERTURBATIONS,
    check_perturbations,
    dropped,
    perturbation_generator,
    reversed_order,
    shuffled,
    shuffled_trend_kept,
    static,
)
from spatiotemporal.utils.errors import UserInputError


def clip():
    """(B=2, C=3, T=6, H=2, W=2): frame t of every channel holds values around t."""
    noise = torch.randn(2, 3, 6, 2, 2, generator=torch.Generator().manual_seed(1))
    return torch.arange(6.0).view(1, 1, 6, 1, 1) + 0.1 * noise


def test_reversed_and_static_and_dropped():
    x = clip()
    assert torch.equal(reversed_order(x, -3), x[:, :, [5, 4, 3, 2, 1, 0]])
    s = static(x, -3)
    assert all(torch.equal(s[:, :, t], x[:, :, 3]) for t in range(6))
    assert torch.equal(dropped(x, -3), x[:, :, [0, 0, 2, 2, 4, 4]])


def test_shuffled_is_a_seeded_permutation():
    x = clip()
    a = shuffled(x, -3, perturbation_generator(0))
    b = shuffled(x, -3, perturbation_generator(0))
    assert torch.equal(a, b)
    order = [int(a[0, 0, t].mean().round()) for t in range(6)]
    assert sorted(order) == list(range(6)) and order != list(range(6))


def test_shuffled_trend_kept_restores_frame_means():
    x = clip()
    y = shuffled_trend_kept(x, -3, perturbation_generator(0))
    torch.testing.assert_close(y.mean((-2, -1)), x.mean((-2, -1)))
    # the content moved: the within-frame pattern of frame 0 is now another frame's
    assert not torch.allclose(y - y.mean((-2, -1), keepdim=True), x - x.mean((-2, -1), keepdim=True))


def test_volume_depth_axis_and_bad_name():
    v = torch.arange(5.0).view(1, 1, 1, 1, 5).expand(1, 1, 2, 2, 5)
    assert torch.equal(reversed_order(v, -1)[0, 0, 0, 0], torch.tensor([4.0, 3, 2, 1, 0]))
    with pytest.raises(UserInputError, match="--perturb flipped: not a video perturbation .*shuffled_trend_kept"):
        check_perturbations(["flipped"], VIDEO_PERTURBATIONS, "video")
    assert check_perturbations(["static"], VIDEO_PERTURBATIONS, "video") == ["original", "static"]
