"""k-fold splits of a volume training list (MONAI's ``partition_dataset``) and ensembles of segmentation models
(probabilities averaged): an ensemble of one model, or of a model with itself, is that model."""

import pytest
import torch
from torch import nn

from spatiotemporal.data.volume import VolumeDataError, case_id, fold_split
from spatiotemporal.models import create_model
from spatiotemporal.pipelines import ImagePipeline, VolumePipeline
from spatiotemporal.pipelines.ensemble import check_ensemble
from spatiotemporal.pipelines.segmentation import InferenceOptions, SegmentationTask
from spatiotemporal.pipelines.volume import VolumeDataSection
from spatiotemporal.utils.errors import UserInputError

CASES = [{"image": f"/data/imagesTr/case_{i:03d}.nii.gz", "label": f"/data/labelsTr/case_{i:03d}.nii.gz"}
         for i in range(11)]


@pytest.mark.parametrize("folds", [2, 3, 5, 11])
def test_folds_are_disjoint_and_cover_the_training_list(folds):
    vals, sizes = [], []
    for k in range(folds):
        train, val = fold_split(CASES, folds=folds, fold=k, seed=0)
        ids_t, ids_v = {case_id(c) for c in train}, {case_id(c) for c in val}
        assert not ids_t & ids_v and len(train) + len(val) == len(CASES)
        assert ids_t | ids_v == {case_id(c) for c in CASES}
        vals += sorted(ids_v)
        sizes.append(len(val))
    assert sorted(vals) == sorted(case_id(c) for c in CASES)  # every case validated exactly once
    assert max(sizes) - min(sizes) <= 1


def test_folds_depend_on_the_seed_only():
    a = [fold_split(CASES, folds=3, fold=k, seed=7)[1] for k in range(3)]
    assert a == [fold_split(CASES, folds=3, fold=k, seed=7)[1] for k in range(3)]
    assert a != [fold_split(CASES, folds=3, fold=k, seed=8)[1] for k in range(3)]
    assert case_id(a[0][0]).startswith("case_") and "/" not in case_id(a[0][0])


@pytest.mark.parametrize("kw,key", [(dict(folds=1, fold=0), "data.folds"), (dict(folds=12, fold=0), "data.folds"),
                                    (dict(folds=3, fold=3), "data.fold "), (dict(folds=3, fold=-1), "data.fold ")])
def test_bad_fold_keys_are_named(kw, key):
    with pytest.raises(VolumeDataError, match=key) as e:
        fold_split(CASES, seed=0, **kw)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("kw,msg", [(dict(folds=1), "folds .--folds. must be 0"),
                                    (dict(folds=4, fold=4), r"fold .--fold. must be in \[0, 3\]"),
                                    (dict(fold=2), "give --folds N too")])
def test_recipe_fold_keys_are_checked_when_read(kw, msg):
    with pytest.raises(ValueError, match=msg):
        VolumeDataSection(**kw)


class Conv(nn.Module):
    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = nn.Conv3d(1, 3, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


@pytest.mark.parametrize("kw", [{}, dict(tta_flips="single")])
def test_an_ensemble_of_one_model_or_of_a_model_with_itself_is_that_model(kw):
    task = SegmentationTask(["bg", "a", "b"], (8, 8, 8), overlap=0.5, sw_batch_size=2,
                            inference=InferenceOptions(**kw))
    x, m = torch.randn(1, 1, 12, 10, 8), Conv(0)
    with torch.inference_mode():
        single = task.segment(m, x)
        assert torch.equal(task.segment_ensemble([m], x), single)
        assert torch.equal(task.segment_ensemble([m, m], x), single)
        other = Conv(1)
        want = (task.model_probabilities(m, x) + task.model_probabilities(other, x)) / 2
        assert torch.allclose(task.ensemble_probabilities([m, other], x), want)
        assert torch.equal(task.segment_ensemble([m, other], x), task.labels_from_probabilities(want))
    assert single.shape == (1, 1, 12, 10, 8)


def test_ensembles_need_the_same_classes_and_preprocessing_and_a_pipeline_that_averages():
    a, b = (create_model("unetr_tiny", num_layers=1, img_size=(32, 32, 32)) for _ in range(2))
    prep = {"dataset": "builtin", "volume": {"a_min": -175.0, "roi": [32, 32, 32]}}
    a.pretrained_cfg = {"class_names": ["bg", "liver"], "preprocessing": prep}
    b.pretrained_cfg = {"class_names": ["bg", "liver"], "preprocessing": prep}
    check_ensemble(VolumePipeline(), [a, b], ["A.pt", "B.pt"])
    b.pretrained_cfg = {"class_names": ["bg", "spleen"], "preprocessing": prep}
    with pytest.raises(UserInputError, match=r"A.pt and B.pt cannot be ensembled: their class_names differ"):
        check_ensemble(VolumePipeline(), [a, b], ["A.pt", "B.pt"])
    b.pretrained_cfg = {"class_names": ["bg", "liver"],
                        "preprocessing": {**prep, "volume": {"a_min": -100.0, "roi": [32, 32, 32]}}}
    with pytest.raises(UserInputError, match=r"their preprocessing.volume.a_min differ \(-175.0 vs -100.0\)"):
        check_ensemble(VolumePipeline(), [a, b], ["A.pt", "B.pt"])
    with pytest.raises(UserInputError, match="--checkpoint given 2 times: image models predict with one"):
        check_ensemble(ImagePipeline(), [a, b], ["A.pt", "B.pt"])
    with pytest.raises(UserInputError, match="--fold/--folds: image runs have no k-fold split"):
        ImagePipeline().fold_overrides(0, 5)


def test_folds_without_fold_say_which_fold_is_assumed(caplog):
    with caplog.at_level("WARNING", logger="spatiotemporal.pipelines"):
        assert VolumePipeline().fold_overrides(None, 5) == ["data.folds=5"]
    assert [r.getMessage() for r in caplog.records] == [
        "--folds 5 without --fold: validating on the recipe's data.fold (0 unless the recipe sets it)"]
    assert VolumePipeline().fold_overrides(2, 5) == ["data.fold=2", "data.folds=5"]


def test_an_ensemble_of_region_models_averages_their_sigmoids_then_thresholds():
    from spatiotemporal.pipelines.region_segmentation import RegionSegmentationTask

    task = RegionSegmentationTask(["TC", "WT", "ET"], (8, 8, 8), overlap=0.5, sw_batch_size=2)
    x, a, b = torch.randn(1, 1, 12, 10, 8), Conv(0), Conv(1)
    with torch.inference_mode():
        single = task.segment(a, x)
        assert torch.equal(task.segment_ensemble([a, a], x), single)  # the same model twice: the same masks
        mean = (task.predict(a, x).sigmoid() + task.predict(b, x).sigmoid()) / 2  # sigmoids averaged, not logits
        assert torch.equal(task.segment_ensemble([a, b], x), (mean > 0.5).float())
    assert single.shape == (1, 3, 12, 10, 8) and set(single.unique().tolist()) <= {0.0, 1.0}
