"""The video pipeline's mixup / cutmix / label smoothing keys (named as the image pipeline's) reach the training
task: timm Mixup on the clips with its label smoothing, soft-target cross-entropy; off by default."""

import numpy as np
import pytest
import torch
from timm.data import Mixup
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from torch import nn

from spatiotemporal.data.video import ClipMixup
from spatiotemporal.pipelines.video import VideoPipeline, VideoRecipe
from spatiotemporal.utils.errors import UserInputError

CLASSES = ["a", "b", "c"]


def recipe(**data) -> VideoRecipe:
    r = VideoRecipe()
    for k, v in data.items():
        setattr(r.data, k, v)
    return r


def test_mixup_and_smoothing_train_on_clips_as_timm_mixup():
    task = VideoPipeline().task(recipe(mixup_alpha=0.8, cutmix_alpha=1.0, smoothing=0.1), CLASSES, None)
    assert isinstance(task.mixup_fn, ClipMixup)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 2 * 8 * 8, 3))
    x, y = torch.rand(4, 3, 2, 8, 8), torch.tensor([0, 1, 2, 0])
    np.random.seed(1)
    loss, _, n = task.train_step(model, {"video": x.clone(), "label": y})
    np.random.seed(1)
    mixed, target = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1, num_classes=3)(
        x.clone().reshape(4, 6, 8, 8), y)
    assert n == 4 and target.shape == (4, 3) and target.min() > 0  # smoothed soft targets
    torch.testing.assert_close(loss, SoftTargetCrossEntropy()(model(mixed.reshape(4, 3, 2, 8, 8)), target))


def test_smoothing_alone_and_the_default():
    smooth = VideoPipeline().task(recipe(smoothing=0.1), CLASSES, None)
    assert smooth.mixup_fn is None and isinstance(smooth.loss_fn, LabelSmoothingCrossEntropy)
    plain = VideoPipeline().task(recipe(), CLASSES, None)
    assert plain.mixup_fn is None and isinstance(plain.loss_fn, nn.CrossEntropyLoss)


def test_mixup_with_multi_label_is_one_line_error():
    r = recipe(mixup_alpha=0.8)
    r.data.video.multi_label = True
    with pytest.raises(UserInputError, match="data.mixup_alpha") as e:
        VideoPipeline().task(r, CLASSES, None)
    assert "\n" not in str(e.value)


def test_mvit_v2_s_k400_recipe_carries_the_published_augmentation():
    """SlowFast@287ec00 configs/Kinetics/MVITv2_S_16x4.yaml:18-19,46,49-61 (recipes.md section 1)."""
    from importlib.resources import files

    r = VideoPipeline().load_recipe(files("spatiotemporal") / "configs" / "mvit_v2_s_k400.yaml", [])
    v = r.data.video
    assert (v.rand_augment, v.rrc_scale, v.rrc_ratio, v.random_erasing, v.repeated_aug) == (
        "rand-m7-n4-mstd0.5-inc1", (0.08, 1.0), (0.75, 1.3333), 0.25, 2)
    assert (r.data.mixup_alpha, r.data.cutmix_alpha, r.data.smoothing) == (0.8, 1.0, 0.1)
    assert r.train.batch_size * v.repeated_aug * r.train.accum_steps == 32  # clips per optimiser step
