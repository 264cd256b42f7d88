"""ERF (RepLKNet's method): exact theoretical receptive fields of conv stacks, area ratios on known maps,
and the frame structure of real TimeSformer ERFs."""

import numpy as np
import pytest
import torch
from torch import nn

from spatiotemporal import create_model
from spatiotemporal.viz import area_ratios, compute_erf, erf_metrics, normalize_erf, support_extent
from spatiotemporal.viz.plots import display_map


class ConvStack(nn.Module):
    """``k`` same-padded 3^d convolutions with all-positive weights and ReLUs; ``feature_map`` = the last map."""

    def __init__(self, k: int, ndim: int, channels: int = 2):
        super().__init__()
        conv = nn.Conv2d if ndim == 2 else nn.Conv3d
        layers = []
        for i in range(k):
            layers += [conv(1 if i == 0 else channels, channels, 3, padding=1), nn.ReLU()]
        self.net = nn.Sequential(*layers)
        g = torch.Generator().manual_seed(k)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.rand(p.shape, generator=g) + 0.1)  # every path counts

    def feature_map(self, x):
        return self.net(x)


@pytest.mark.parametrize("ndim,k,size", [(2, 1, 9), (2, 3, 17), (2, 5, 21), (3, 2, 11), (3, 6, 33)])
def test_conv_stack_erf_is_exactly_the_theoretical_receptive_field(ndim, k, size):
    model = ConvStack(k, ndim).eval()
    g = torch.Generator().manual_seed(0)
    inputs = [torch.rand((1,) + (size,) * ndim, generator=g) for _ in range(2)]
    erf, used = compute_erf(model, inputs, progress=False)
    assert used == 2 and erf.shape == (size,) * ndim
    assert support_extent(erf) == [2 * k + 1] * ndim  # 6 layers of 3x3x3 on 33^3 -> 13 voxels per axis
    c = size // 2
    inside = tuple(slice(c - k, c + k + 1) for _ in range(ndim))
    assert (erf[inside] > 0).all()  # every voxel of the theoretical field contributes
    assert erf.sum() == pytest.approx(erf[inside].sum())  # and nothing outside it
    ratios = area_ratios(normalize_erf(erf), [0.99, 1.0])
    assert ratios[0]["reached"] and ratios[0]["side"] <= 2 * k + 1
    assert ratios[1] == {"threshold": 1.0, "side": size, "area_ratio": 1.0, "reached": False}


def test_area_ratios_on_known_maps():
    uniform = np.ones((11, 11))
    r = area_ratios(uniform)  # need > 24.2, 36.3, 60.5, 119.79 of 121 pixels
    assert [x["side"] for x in r] == [5, 7, 9, 11]
    assert [x["area_ratio"] for x in r] == pytest.approx([25 / 121, 49 / 121, 81 / 121, 1.0])
    assert all(x["reached"] for x in r)

    delta = np.zeros((11, 11))
    delta[5, 5] = 3.0
    assert {(x["side"], x["area_ratio"]) for x in area_ratios(delta)} == {(1, 1 / 121)}

    corner = np.zeros((11, 11))
    corner[0, 0] = 1.0  # reached only by the whole map
    assert [(x["side"], x["area_ratio"], x["reached"]) for x in area_ratios(corner, [0.5])] == [(11, 1.0, True)]

    for x in area_ratios(np.zeros((6, 6))):  # never crashes, reports the whole map
        assert (x["side"], x["area_ratio"], x["reached"]) == (6, 1.0, False)

    even = np.ones((8, 8))  # centre index 4: boxes [4,5), [3,6), [2,7), [1,8), [0,8)
    r = area_ratios(even, [0.1, 0.3, 0.99])
    assert [(x["side"], x["area_ratio"]) for x in r] == [(3, 9 / 64), (5, 25 / 64), (8, 1.0)]

    cube = np.ones((5, 5, 5))
    r = area_ratios(cube, [0.2, 0.5])  # > 25 -> 3^3 = 27; > 62.5 -> 5^3
    assert [(x["side"], x["area_ratio"]) for x in r] == [(3, 27 / 125), (5, 1.0)]


def test_normalize_and_video_metrics():
    m = np.zeros((4, 9, 9))
    m[2, 4, 4] = 99.0  # centre frame: log10(100) = 2 -> 1.0
    m[0, 4, 4] = 9.0  # log10(10) = 1 -> 0.5
    n = normalize_erf(m)
    assert n.max() == 1.0 and n[0, 4, 4] == pytest.approx(0.5)
    d = display_map(np.array([1000.0, 1.0, 0.0]), decades=3)  # 3 decades: 1e-3 of the peak is still visible
    assert d == pytest.approx([1.0, np.log10(2) / np.log10(1001), 0.0])
    met = erf_metrics(m, "video", [0.5, 0.7])
    assert met["frame_mass"] == pytest.approx([1 / 3, 0.0, 2 / 3, 0.0])
    assert met["support"] == [3, 1, 1]
    assert [x["side"] for x in met["area_ratios"]] == [1, 1]  # all mass at the centre pixel
    assert [x["side"] for x in met["temporal_ratios"]] == [1, 4]  # centre frame 2 holds 2/3; then frames 0..3


def _tiny_timesformer(attention):
    torch.manual_seed(0)
    return create_model("timesformer_tiny", mixer=attention, depth=1, img_size=16, num_frames=4).eval()


def test_timesformer_erf_frames_follow_the_attention():
    g = torch.Generator().manual_seed(1)
    clips = [torch.randn(3, 4, 16, 16, generator=g) for _ in range(2)]
    space, _ = compute_erf(_tiny_timesformer("space_only"), clips, progress=False)
    joint, _ = compute_erf(_tiny_timesformer("joint"), clips, progress=False)
    assert space.shape == joint.shape == (4, 16, 16)
    frame_mass = space.sum((1, 2))
    assert frame_mass[2] > 0 and np.count_nonzero(frame_mass) == 1  # space-only: the centre frame only
    assert (joint.sum((1, 2)) > 0).all()  # joint space-time attention reaches every frame
    met = erf_metrics(joint, "video")
    assert sum(met["frame_mass"]) == pytest.approx(1.0) and np.argmax(met["frame_mass"]) == 2


def test_nan_maps_are_skipped():
    class Half(nn.Module):
        calls = 0

        def feature_map(self, x):
            Half.calls += 1
            y = x * 2.0
            return y * float("nan") if Half.calls == 1 else y

    erf, used = compute_erf(Half(), [torch.ones(1, 5, 5), torch.ones(1, 5, 5)], progress=False)
    assert used == 1 and erf[2, 2] == 2.0 and erf.sum() == 2.0
