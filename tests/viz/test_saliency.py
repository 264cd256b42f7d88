"""Saliency against hand-computed references: input x gradient against ``torch.autograd.grad`` of the logit on a
real registered model, Grad-CAM against the textbook formula on a small conv net whose feature map is known, and
a model that reads only one frame / slice has no saliency elsewhere."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spatiotemporal import create_model
from spatiotemporal.utils.errors import UserInputError
from spatiotemporal.viz.saliency import gradcam, input_x_gradient, mass_along, score_of


def test_input_x_gradient_equals_autograd_of_the_predicted_logit():
    torch.manual_seed(0)
    model = create_model("convmixer_tiny_builtin").eval()
    x = torch.randn(1, 3, 32, 32)
    m, k = input_x_gradient(model, x)
    xr = x.clone().requires_grad_(True)
    logits = model(xr)
    assert k == int(logits.argmax())
    (g,) = torch.autograd.grad(logits[0, k], xr)
    expected = (x * g).abs().sum(1)[0].numpy()
    assert m.shape == (32, 32) and m.max() > 0
    np.testing.assert_allclose(m, expected, rtol=1e-5, atol=1e-8)
    m2, k2 = input_x_gradient(model, x, target="label", label=1)
    assert k2 == 1 and not np.allclose(m2, m)


class ConvNet(nn.Module):
    """conv -> relu (the feature map) -> mean -> linear, over 2D images."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.act = nn.ReLU()
        self.fc = nn.Linear(4, 3)

    def feature_map(self, x):
        return self.act(self.conv(x)).unsqueeze(2)  # (B, 4, 1, h, w), as the models' image maps

    def feature_maps(self, x):
        return {"stage1": self.feature_map(x)}

    def forward(self, x):
        return self.fc(self.act(self.conv(x)).mean((2, 3)))


def test_gradcam_equals_the_textbook_formula():
    torch.manual_seed(0)
    net = ConvNet().eval()
    x = torch.randn(1, 3, 16, 16)
    cam, k = gradcam(net, x, target=2)
    a = net.act(net.conv(x))  # (1, 4, 8, 8)
    # score = fc.weight[2] . mean(a): d score / d a[d, i, j] = w[2, d] / 64, so the channel weights are w[2] / 64
    weights = net.fc.weight[2].detach() / 64
    expected = torch.relu((weights[None, :, None, None] * a.detach()).sum(1, keepdim=True))
    expected = F.interpolate(expected, size=(16, 16), mode="bilinear", align_corners=False)[0, 0]
    assert k == 2 and cam.shape == (16, 16) and cam.max() > 0
    np.testing.assert_allclose(cam, expected.numpy(), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(gradcam(net, x, "stage1", target=2)[0], cam)  # the same map, by its stage name
    with pytest.raises(UserInputError, match="this model's feature maps are stage1"):
        gradcam(net, x, "stage9")


class OneFrame(nn.Module):
    """A video classifier that reads only frame 2 of ``(B, 3, T, H, W)``."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        return self.fc(x[:, :, 2].mean((2, 3)))


def test_saliency_is_zero_outside_the_frame_the_model_reads():
    torch.manual_seed(0)
    m, _ = input_x_gradient(OneFrame(), torch.randn(1, 3, 5, 8, 8))
    assert m.shape == (5, 8, 8) and m[2].sum() > 0 and m[[0, 1, 3, 4]].sum() == 0
    assert mass_along(m, "video") == [0.0, 0.0, 1.0, 0.0, 0.0]


def test_segmenter_score_is_the_class_logits_over_its_predicted_region():
    logits = torch.tensor([[[[2.0, 0.0], [0.0, 0.0]], [[1.0, 3.0], [4.0, -1.0]]]])  # (1, 2, 2, 2)
    score, k = score_of(logits, "pred")
    assert k == 1 and float(score) == 7.0  # class 1 wins at (0, 1) and (1, 0): 3 + 4
    assert float(score_of(logits, 0)[0]) == 2.0 + 0.0  # class 0 wins at (0, 0) and (1, 1)
    with pytest.raises(UserInputError, match="classes 0..1"):
        score_of(logits, 5)
