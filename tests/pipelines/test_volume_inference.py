"""Whole-volume inference options: gaussian blending, the sw_device / device split, test-time flips, the largest
connected component per organ, HD95 and surface Dice through MONAI's metrics."""

import pytest
import torch
from torch import nn

from spatiotemporal.pipelines.segmentation import InferenceOptions, SegmentationTask, SurfaceMetrics

NAMES = ["background", "liver", "spleen"]


class Pointwise(nn.Module):
    """Logits from a voxel's own value (label k -> class k): flip-equivariant and independent of the window."""

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.nn.functional.one_hot(x[:, 0].round().long().clamp(0, 2), 3).permute(0, 4, 1, 2, 3).float() * 8


class Conv(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv3d(1, 3, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


def _labels():
    y = torch.zeros(1, 1, 24, 20, 16)
    y[..., 2:10, 2:10, 2:8] = 1
    y[..., 14:22, 10:18, 8:14] = 2
    return y


def _task(**kw):
    return SegmentationTask(NAMES, (8, 8, 8), overlap=0.5, sw_batch_size=2, inference=InferenceOptions(**kw))


@pytest.mark.parametrize("kw", [dict(mode="gaussian"), dict(tta_flips="single"), dict(tta_flips="all"),
                                dict(mode="gaussian", tta_flips="all", sw_device="cpu", device="cpu")])
def test_options_keep_exact_predictions_of_a_pointwise_model(kw):
    x = _labels()
    plain = _task().predict(Pointwise(), x).softmax(1)
    other = _task(**kw).predict(Pointwise(), x)
    other = other if "tta_flips" in kw else other.softmax(1)
    assert other.device.type == "cpu" and torch.allclose(other, plain, atol=1e-5)


def test_flips_average_the_flipped_passes():
    x = torch.randn(1, 1, 16, 16, 16)
    model, task = Conv(), _task(tta_flips="single")
    want = sum(_task().predict(model, x.flip(a) if a else x).softmax(1).flip(a) if a else
               _task().predict(model, x).softmax(1) for a in [(), (2,), (3,), (4,)]) / 4
    with torch.no_grad():
        assert torch.allclose(task.predict(model, x), want, atol=1e-6)
    with pytest.raises(ValueError, match="tta_flips"):
        InferenceOptions(tta_flips="some")
    with pytest.raises(ValueError, match="gaussian"):
        InferenceOptions(mode="gauss")


def test_largest_component_removes_stray_islands():
    x = _labels()
    x[..., 20:22, 2:4, 2:4] = 1  # a stray island of liver far from the liver
    assert (_task().segment(Pointwise(), x) == 1).sum() == 8 * 8 * 6 + 8
    kept = _task(largest_component=True).segment(Pointwise(), x)
    assert (kept == 1).sum() == 8 * 8 * 6 and (kept == 2).sum() == 8 * 8 * 6


def test_hd95_and_surface_dice_in_mm():
    y = _labels()
    sm = SurfaceMetrics(3, tolerance_mm=1.0)
    sm.update(y, y, spacing=(2.0, 2.0, 3.0))
    shifted = torch.roll(y, 1, dims=2)  # every organ moved one voxel (2 mm) along H
    sm2 = SurfaceMetrics(3, tolerance_mm=1.0)
    sm2.update(shifted, y, spacing=(2.0, 2.0, 3.0))
    exact, moved = sm.result(NAMES), sm2.result(NAMES)
    assert exact["hd95_liver"] == 0 and exact["nsd_liver"] == 1 and exact["mean_nsd"] == 1
    assert moved["hd95_liver"] == pytest.approx(2.0) and moved["nsd_liver"] < 1


def test_evaluate_reports_surface_metrics_beside_dice():
    task = _task(surface_metrics=True, largest_component=True)
    task.spacing = (1.5, 1.5, 2.0)
    y = _labels()
    out = task.evaluate(Pointwise(), [{"image": y, "label": y}])
    assert out["mean_dice"] == pytest.approx(1.0) and out["mean_hd95"] == 0 and out["mean_nsd"] == 1


def test_hd95_of_an_organ_the_prediction_misses_is_inf_with_the_reason():
    """MONAI gives NaN there; it was left out of the result without a note."""
    ref = torch.zeros(1, 1, 16, 16, 16)
    ref[..., 4:8, 4:8, 4:8], ref[..., 10:14, 10:14, 10:14] = 1, 2
    missed = ref.clone()
    missed[missed == 1] = 0  # organ "a" predicted nowhere
    shifted = torch.roll(ref, 1, dims=2)
    m = SurfaceMetrics(3, tolerance_mm=2.0)
    for pred in (missed, ref, shifted):
        m.update(pred, ref)
    out = m.result(["bg", "a", "b"])
    assert out["hd95_a"] == float("inf") and out["mean_hd95"] == float("inf")
    assert out["hd95_b"] == pytest.approx(1 / 3) and out["nsd_a"] == pytest.approx(2 / 3)  # 0, 1, 1
    assert out["hd95_notes"] == [
        "hd95_a is inf: the prediction has no a voxel in 1 of 3 volume(s) whose reference has it (the distance to "
        "an empty prediction is infinite); the mean over the other 2: 0.5 mm"]
    exact = SurfaceMetrics(3, tolerance_mm=2.0)
    exact.update(ref, ref)
    assert exact.result(["bg", "a", "b"]) == {"hd95_a": 0.0, "nsd_a": 1.0, "hd95_b": 0.0, "nsd_b": 1.0,
                                              "mean_hd95": 0.0, "mean_nsd": 1.0}  # no note
