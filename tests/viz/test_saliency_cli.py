"""``spatio viz saliency`` end to end through ``spatiotemporal.cli.main.main`` on tiny random-weight models of
several families and every modality's built-in data (videos, images, volumes)."""

import json

import numpy as np
import pytest
from PIL import Image

from spatiotemporal.cli.main import main

pytestmark = pytest.mark.usefixtures("module_cache")

CASES = [  # (model spec, extra flags, the map's rank: images 2, videos and volumes 3)
    ("timesformer_tiny:depth=1", [], 3),
    ("mvit_tiny", [], 3),
    ("xcit_tiny_builtin:depth=1", [], 2),
    ("convmixer_tiny_builtin", ["--method", "gradcam"], 2),
    ("segformer3d_b0:in_chans=1", ["--img-size", "32", "--method", "gradcam", "--stage", "stage2", "--target", "1"],
     3),
]


@pytest.mark.parametrize("spec,flags,rank", CASES, ids=[c[0].split(":")[0] for c in CASES])
def test_saliency_runs_on_every_family(spec, flags, rank, tmp_path, capsys):
    out = tmp_path / "s.png"
    rc = main(["viz", "saliency", "--model", spec, "--max-samples", "1", "--out", str(out), "--no-progress", *flags])
    text = capsys.readouterr()
    assert rc == 0, text.err
    rep = json.loads(out.with_suffix(".json").read_text())
    (s,) = rep["samples"]
    assert rep["method"] == ("gradcam" if "gradcam" in flags else "input_x_gradient")
    m = np.load(out.with_suffix(".npz"))["saliency_0"]
    assert m.ndim == rank and list(m.shape) == s["shape"] and m.min() >= 0 and m.sum() > 0
    if rep["kind"] == "video":
        assert len(s["mass_per_frame"]) == m.shape[0] and abs(sum(s["mass_per_frame"]) - 1) < 1e-3
    if rep["kind"] == "volume":
        assert s["target_class"] == 1 and rep["stage"] == "stage2" and len(s["mass_per_slice"]) == m.shape[-1]
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 100
    assert "wrote" in text.out


def test_saliency_errors_are_one_line(tmp_path, capsys):
    out = str(tmp_path / "s.png")
    assert main(["viz", "saliency", "--model", "convmixer_tiny_builtin", "--method", "gradcam", "--stage", "stage9",
                 "--out", out]) == 2
    assert "feature_maps" in capsys.readouterr().err
    assert main(["viz", "saliency", "--model", "convmixer_tiny_builtin", "--stage", "head", "--out", out]) == 2
    assert "--stage belongs to --method gradcam" in capsys.readouterr().err
