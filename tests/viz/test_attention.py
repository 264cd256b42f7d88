"""Attention weights are recorded only by the inspection path, which gives the fast path's outputs; they equal
transformers' own attention probabilities; the rollout is a distribution over the token grid."""

import pytest
import torch
from testing_utils import randomize_

from spatiotemporal import create_model, load_pretrained
from spatiotemporal.layers import record_attention
from spatiotemporal.viz.attention import attention_rollout, block_matrices

MODELS = {
    "timesformer_divided": ("timesformer_tiny", dict(num_frames=4, mixer="divided")),
    "timesformer_joint": ("timesformer_tiny", dict(num_frames=4, mixer="joint")),
    "timesformer_space_only": ("timesformer_tiny", dict(num_frames=4, mixer="space_only")),
    "timesformer_framewise": ("timesformer_tiny", dict(num_frames=4, mixer="joint", framewise=True)),
    "videomae_joint": ("videomae_tiny", dict(num_frames=4)),
    "videomae_divided": ("videomae_tiny", dict(num_frames=4, mixer="divided")),
    "unetr_divided": ("unetr_tiny", dict(img_size=(32, 32, 32), mixer="divided")),
}


def _model_and_input(case):
    name, kw = MODELS[case]
    m = randomize_(create_model(name, **kw).eval())
    x = torch.randn(2, 1, 32, 32, 32) if name.startswith("unetr") else torch.randn(2, 3, 4, 32, 32)
    return m, x


@pytest.mark.parametrize("case", sorted(MODELS))
def test_recording_path_gives_the_fast_outputs_and_a_distribution(case):
    m, x = _model_and_input(case)
    with torch.no_grad():
        fast = m(x)
        with record_attention() as store:
            slow = m(x)
    assert store and (slow - fast).abs().max() <= 1e-5
    mats, grid, p, _ = block_matrices(m, x)
    for a in mats:  # every combined block matrix is row-stochastic
        assert torch.allclose(a.sum(-1), torch.ones_like(a.sum(-1)), atol=1e-5)
    roll = attention_rollout(m, x)
    assert roll.shape == (2, *grid) and (roll >= 0).all()
    assert torch.allclose(roll.flatten(1).sum(1), torch.ones(2), atol=1e-5)


transformers = pytest.importorskip("transformers")


@pytest.mark.parametrize("attention", ["joint_space_time", "divided_space_time"])
def test_recorded_weights_equal_transformers_attentions(tmp_path, attention):
    cfg = transformers.TimesformerConfig(image_size=32, patch_size=8, num_frames=4, hidden_size=64,
                                         num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                                         attention_type=attention, num_labels=3)
    ref = randomize_(transformers.TimesformerForVideoClassification(cfg).eval())
    ref.save_pretrained(tmp_path)
    ours = load_pretrained(tmp_path)
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad(), record_attention() as store:
        ours(x)
        theirs = ref(pixel_values=x.transpose(1, 2), output_attentions=True).attentions
    t, n = 4, 16
    if attention == "joint_space_time":  # transformers orders tokens (h w t), ours (t h w)
        perm = torch.tensor([0] + [1 + s * t + f for f in range(t) for s in range(n)])
        for mine, ref_a in zip(store, theirs):
            assert (mine - ref_a[:, :, perm][:, :, :, perm]).abs().max() <= 1e-5
    else:  # transformers returns the spatial attention (B*T, heads, 1+N, 1+N), the second call of each block
        for mine, ref_a in zip(store[1::2], theirs):
            assert (mine - ref_a).abs().max() <= 1e-5
