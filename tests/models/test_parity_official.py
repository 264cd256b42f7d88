"""The official TimeSformer fixtures (../shared/fixtures/timesformer_official): our outputs equal theirs."""

import json

import pytest
import torch

from spatiotemporal import load_pretrained


@pytest.mark.parametrize("attention", ["divided", "joint", "space_only"])
def test_official_checkpoint_reproduces_features_and_logits(shared_fixtures, attention):
    root = shared_fixtures / "timesformer_official"
    manifest = json.loads((root / "manifest.json").read_text())
    cfg = manifest["config"]
    model = load_pretrained(root / f"{attention}.pyth", num_heads=cfg["num_heads"])
    expected = {"divided": ("divided", False), "joint": ("joint", False), "space_only": ("joint", True)}[attention]
    assert (model.cfg.mixer, model.cfg.framewise) == expected  # inferred from the keys
    assert sum(p.numel() for p in model.parameters()) == manifest["models"][attention]["params"]
    io = torch.load(root / f"{attention}_io.pt", weights_only=True)
    with torch.no_grad():
        feats = model.forward_features(io["input"])
        logits = model.head(feats)
        resized = model(io["input_resized"])  # more and larger frames; official nearest interpolation
    assert (feats - io["features"]).abs().max() <= 1e-5
    assert (logits - io["logits"]).abs().max() <= 1e-5
    assert (resized - io["logits_resized"]).abs().max() <= 1e-5


def test_default_interpolation_is_ours_but_native_input_still_matches(shared_fixtures):
    root = shared_fixtures / "timesformer_official"
    model = load_pretrained(root / "divided.pyth", num_heads=4, pos_interp="bicubic", time_interp="linear")
    io = torch.load(root / "divided_io.pt", weights_only=True)
    with torch.no_grad():
        assert (model(io["input"]) - io["logits"]).abs().max() <= 1e-5
        assert model(io["input_resized"]).shape == io["logits_resized"].shape


def test_wrong_head_count_changes_outputs(shared_fixtures):
    """num_heads is not stored in the file: the default for width 64 is 1, which must not match."""
    root = shared_fixtures / "timesformer_official"
    io = torch.load(root / "divided_io.pt", weights_only=True)
    with torch.no_grad():
        assert (load_pretrained(root / "divided.pyth")(io["input"]) - io["logits"]).abs().max() > 1e-3
