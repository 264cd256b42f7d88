"""Mixup/CutMix (``data/image/mixup.py``) + the classification loss (``pipelines/losses.py``): DeiT III binarised BCE
targets, label-smoothed CE, odd batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from timm.data import Mixup
from timm.loss import BinaryCrossEntropy, LabelSmoothingCrossEntropy, SoftTargetCrossEntropy

from spatiotemporal.data.image import build_mixup
from spatiotemporal.pipelines.losses import classification_loss

K = 6


def build_mixup_and_loss(num_classes, loss="bce", mixup_alpha=0.8, cutmix_alpha=1.0, smoothing=0.0):
    """The image pipeline's pair, as its ``task`` builds it."""
    mix = build_mixup(num_classes, mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, smoothing=smoothing)
    return mix, classification_loss(loss, smoothing=smoothing, soft_targets=mix is not None)


def _batch(b: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.rand(b, 3, 8, 8, generator=g), torch.tensor([0, 1, 2, 3, 4, 5, 0][:b])


def test_deit3_defaults():
    mix, loss_fn = build_mixup_and_loss(K)
    assert (mix.mixup_alpha, mix.cutmix_alpha, mix.switch_prob, mix.mix_prob, mix.mode) == (0.8, 1.0, 0.5, 1.0, "batch")
    assert mix.label_smoothing == 0.0 and mix.num_classes == K
    assert isinstance(loss_fn, BinaryCrossEntropy) and loss_fn.target_threshold == 0.0 and loss_fn.smoothing == 0.0


@pytest.mark.parametrize("np_seed", range(6))
def test_bce_binarises_mixed_targets_both_classes_get_1(np_seed):
    mix, loss_fn = build_mixup_and_loss(K, loss="bce")
    x, y = _batch()
    np.random.seed(np_seed)  # timm draws lambda and mixup-vs-cutmix from NumPy's global RNG
    xm, soft = mix(x.clone(), y)
    lam = soft[0, y[0]].item()  # weight of the sample's own class; the flipped partner's class gets 1 - lam
    assert 0.0 < lam < 1.0 and torch.allclose(soft.sum(1), torch.ones(4))
    binary = torch.zeros(4, K)
    binary[torch.arange(4), y] = 1.0
    binary[torch.arange(4), y.flip(0)] = 1.0  # both mixed classes are positives
    assert torch.equal((soft > 0).float(), binary)
    logits = torch.randn(4, K, generator=torch.Generator().manual_seed(np_seed))
    expected = F.binary_cross_entropy_with_logits(logits, binary)
    assert torch.allclose(loss_fn(logits, soft), expected)
    # DeiT's main.py path: BCEWithLogitsLoss on targets.gt(0.0)
    assert torch.allclose(loss_fn(logits, soft), torch.nn.BCEWithLogitsLoss()(logits, soft.gt(0.0).float()))


def test_ce_with_mixup_uses_smoothed_soft_targets():
    mix, loss_fn = build_mixup_and_loss(K, loss="ce", smoothing=0.1)
    assert isinstance(loss_fn, SoftTargetCrossEntropy) and mix.label_smoothing == 0.1
    x, y = _batch()
    np.random.seed(1)
    _, soft = mix(x.clone(), y)
    assert torch.allclose(soft.sum(1), torch.ones(4)) and soft.min().item() == pytest.approx(0.1 / K)
    logits = torch.randn(4, K)
    assert torch.allclose(loss_fn(logits, soft), (-soft * logits.log_softmax(-1)).sum(-1).mean())


def test_ce_without_mixup_is_label_smoothing_ce():
    mix, loss_fn = build_mixup_and_loss(K, loss="ce", mixup_alpha=0.0, cutmix_alpha=0.0, smoothing=0.1)
    assert mix is None and isinstance(loss_fn, LabelSmoothingCrossEntropy)
    logits, y = torch.randn(5, K), torch.tensor([0, 1, 2, 3, 4])
    assert torch.allclose(loss_fn(logits, y), F.cross_entropy(logits, y, label_smoothing=0.1))
    _, plain = build_mixup_and_loss(K, loss="ce", mixup_alpha=0.0, cutmix_alpha=0.0)
    assert isinstance(plain, torch.nn.CrossEntropyLoss)
    mix, bce = build_mixup_and_loss(K, loss="bce", mixup_alpha=0.0, cutmix_alpha=0.0)
    assert mix is None  # BCE takes the int labels directly, one-hot
    assert torch.allclose(bce(logits, y), F.binary_cross_entropy_with_logits(logits, F.one_hot(y, K).float()))


def test_bad_arguments():
    with pytest.raises(ValueError, match="smoothing"):
        build_mixup_and_loss(K, loss="bce", smoothing=0.1)
    with pytest.raises(ValueError, match="loss"):
        build_mixup_and_loss(K, loss="focal")


def test_odd_batch_mixes_all_but_the_last_sample():
    mix, _ = build_mixup_and_loss(K, loss="ce", smoothing=0.1)
    x, y = _batch(5)
    np.random.seed(3)
    xm, soft = mix(x.clone(), y)
    ref = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1, num_classes=K)
    np.random.seed(3)
    xr, softr = ref(x[:4].clone(), y[:4])
    assert xm.shape == x.shape and soft.shape == (5, K)
    assert torch.equal(xm[:4], xr) and torch.allclose(soft[:4], softr)
    assert torch.equal(xm[4], x[4])
    assert soft[4].argmax().item() == y[4].item() and soft[4].max().item() == pytest.approx(0.9 + 0.1 / K)
    x1, t1 = mix(x[:1].clone(), y[:1])
    assert torch.equal(x1, x[:1]) and t1.shape == (1, K)
