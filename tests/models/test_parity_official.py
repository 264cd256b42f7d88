"""Official TimeSformer vectors: our outputs equal theirs.

Two independent sets (see ``timesformer_official`` in ``conftest.py``): ``tests/fixtures/timesformer_official``
(written by ``tests/fixtures/make_timesformer_official.py`` from the official code) always, and
``../shared/fixtures/timesformer_official`` when it is there.
"""

import json
import logging

import pytest
import torch

from spatiotemporal import load_pretrained


def _manifest(root):
    return json.loads((root / "manifest.json").read_text())


@pytest.mark.parametrize("attention", ["divided", "joint", "space_only"])
def test_official_checkpoint_reproduces_features_and_logits(timesformer_official, attention):
    root = timesformer_official
    manifest = _manifest(root)
    cfg = manifest["config"]
    model = load_pretrained(root / f"{attention}.pyth", num_heads=cfg["num_heads"])
    expected = {"divided": ("divided", False), "joint": ("joint", False), "space_only": ("joint", True)}[attention]
    assert (model.cfg.mixer, model.cfg.framewise) == expected  # inferred from the keys
    assert sum(p.numel() for p in model.parameters()) == manifest["models"][attention]["params"]
    io = torch.load(root / f"{attention}_io.pt", weights_only=True)
    assert io["input_resized"].shape[2] != io["input"].shape[2] and io["input_resized"].shape[3] > io["input"].shape[3]
    with torch.no_grad():
        feats = model.forward_features(io["input"])
        logits = model.head(feats)
        resized = model(io["input_resized"])  # more and larger frames; official nearest interpolation
    assert (feats - io["features"]).abs().max() <= 1e-5
    assert (logits - io["logits"]).abs().max() <= 1e-5
    assert (resized - io["logits_resized"]).abs().max() <= 1e-5


def test_default_interpolation_is_ours_but_native_input_still_matches(timesformer_official):
    root = timesformer_official
    heads = _manifest(root)["config"]["num_heads"]
    model = load_pretrained(root / "divided.pyth", num_heads=heads, pos_interp="bicubic", time_interp="linear")
    io = torch.load(root / "divided_io.pt", weights_only=True)
    with torch.no_grad():
        assert (model(io["input"]) - io["logits"]).abs().max() <= 1e-5
        resized = model(io["input_resized"])
    assert resized.shape == io["logits_resized"].shape
    assert (resized - io["logits_resized"]).abs().max() > 1e-3  # the resized vectors tell the modes apart


def test_wrong_head_count_changes_outputs(timesformer_official, caplog):
    """num_heads is not stored in the file: the default for the width must not be the one used, and the one
    assumed is one WARNING line saying how to set it."""
    root = timesformer_official
    io = torch.load(root / "divided_io.pt", weights_only=True)
    with caplog.at_level(logging.WARNING, logger="spatiotemporal"):
        model = load_pretrained(root / "divided.pyth")
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"an official TimeSformer checkpoint stores no head count: assumed num_heads={model.cfg.num_heads} " \
        in line and "pass num_heads=N" in line, line
    assert model.cfg.num_heads != _manifest(root)["config"]["num_heads"]
    with torch.no_grad():
        assert (model(io["input"]) - io["logits"]).abs().max() > 1e-3
