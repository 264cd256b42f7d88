"""Activation checkpointing policies: identical gradients, less memory kept the more is recomputed."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.distributed._tools.mem_tracker import MemTracker

from spatiotemporal import create_model
from spatiotemporal.layers.recompute import RECOMPUTE_POLICIES

SMALL = dict(img_size=32, patch_size=8, num_frames=4, embed_dim=32, depth=2, num_heads=4, num_classes=5,
             drop_path_rate=0.1)


def _grads_and_peak(policy: str, mixer: str, track: bool) -> tuple[dict, float]:
    torch.manual_seed(0)
    model = create_model("timesformer_tiny", mixer=mixer, recompute=policy, **SMALL).train()
    x = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(2)  # the same drop-path draws in every run (checkpointing replays them)
    tracker = MemTracker() if track else None
    if tracker:
        tracker.track_external(model)
        with tracker:
            F.cross_entropy(model(x), torch.tensor([1, 3])).backward()
        peak = tracker.get_tracker_snapshot("peak")[torch.device("cpu")]
        acts = sum(v for k, v in peak.items() if getattr(k, "value", k) == "Activation")
    else:
        F.cross_entropy(model(x), torch.tensor([1, 3])).backward()
        acts = 0.0
    return {n: p.grad.clone() for n, p in model.named_parameters()}, acts


@pytest.mark.parametrize("mixer", ["divided", "space_only"])
def test_policies_give_the_same_gradients_and_keep_less(mixer):
    ref, _ = _grads_and_peak("none", mixer, track=False)
    peaks = {}
    for policy in RECOMPUTE_POLICIES:
        grads, peaks[policy] = _grads_and_peak(policy, mixer, track=True)
        for name, g in grads.items():
            torch.testing.assert_close(g, ref[name], atol=1e-6, rtol=1e-5, msg=f"{policy}: {name}")
    assert peaks["none"] > peaks["pointwise"] > peaks["projections"] > peaks["full"], peaks


def test_unetr_decoder_recomputes_too():
    def run(policy):
        torch.manual_seed(0)
        model = create_model("unetr_tiny", img_size=(32, 32, 32), num_layers=2, recompute=policy).train()
        x = torch.randn(1, 1, 32, 32, 32, generator=torch.Generator().manual_seed(1))
        model(x).square().mean().backward()
        return {n: p.grad for n, p in model.named_parameters()}

    ref = run("none")
    for name, g in run("pointwise").items():
        torch.testing.assert_close(g, ref[name], atol=1e-6, rtol=1e-5, msg=name)


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="recompute must be one of none, pointwise, projections, full"):
        create_model("timesformer_tiny", recompute="blocks", **SMALL)
