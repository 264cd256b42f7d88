"""Every registered mixer runs forward and backward in every model family: images (ViT, MLP-Mixer, ConvMixer,
XCiT), videos (TimeSformer) and non-cubic volumes (UNETR)."""

import pytest
import torch

from spatiotemporal import create_model
from spatiotemporal.layers import MIXERS

#: (model, config, input shape, output shape): small sizes of each family
MODELS = {
    "vit": ("vit_tiny_builtin", dict(img_size=32, patch_size=8, depth=2), (2, 3, 32, 32), (2, 10)),
    "mlp_mixer": ("mixer_tiny_builtin", dict(img_size=32, patch_size=8, depth=2), (2, 3, 32, 32), (2, 10)),
    "convmixer": ("convmixer_tiny_builtin", dict(img_size=32, patch_size=8, depth=2), (2, 3, 32, 32), (2, 10)),
    "xcit": ("xcit_tiny_builtin", dict(img_size=32, patch_size=8, depth=2), (2, 3, 32, 32), (2, 10)),
    "timesformer": ("timesformer_tiny", dict(img_size=32, num_frames=3, depth=2), (2, 3, 3, 32, 24), (2, 8)),
    "unetr": ("unetr_tiny", dict(img_size=(16, 24, 8), patch_size=4, num_layers=2, feature_size=4), (2, 1, 16, 24, 8),
              (2, 6, 16, 24, 8)),
}


@pytest.mark.parametrize("mixer", sorted(MIXERS))
@pytest.mark.parametrize("family", sorted(MODELS))
def test_every_mixer_in_every_model(family, mixer):
    name, cfg, shape, out_shape = MODELS[family]
    kw = {"mixer_kwargs": {"axis": 1}} if mixer == "divided" and family in ("vit", "mlp_mixer", "convmixer", "xcit") \
        else {}
    torch.manual_seed(0)
    model = create_model(name, mixer=mixer, **cfg, **kw).train()
    if isinstance(getattr(model, "head", None), torch.nn.Linear):
        torch.nn.init.normal_(model.head.weight, std=0.02)  # the MLP-Mixer's head starts at zero
    x = torch.randn(*shape, requires_grad=True)
    y = model(x)
    assert y.shape == out_shape and torch.isfinite(y).all()
    y.float().square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    no_grad = [n for n, p in model.encoder.named_parameters() if p.grad is None]
    assert not no_grad, f"{family}/{mixer}: encoder parameters without a gradient: {no_grad[:5]}"
