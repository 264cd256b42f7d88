"""``spatio viz tsne`` / ``spatio viz erf`` end to end through ``spatiotemporal.cli.main.main`` on tiny
random-weight models: built-in videos (real mp4s decoded by decord/PyAV), an ImageNet-layout JPEG folder and a
decathlon-layout NIfTI set read by MONAI."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from spatiotemporal import create_model, save_pretrained
from spatiotemporal.cli.main import main

TS1 = "timesformer_tiny:depth=1"


@pytest.fixture(scope="module")
def image_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet")
    rng = np.random.default_rng(0)
    for split, n in (("train", 1), ("val", 3)):
        for c, colour in (("n001", (200, 40, 40)), ("n002", (40, 40, 200))):
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                px = np.clip(np.array(colour) + rng.normal(0, 20, (40, 48, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(px).save(root / split / c / f"{c}_{i}.JPEG")
    return root


def _run(argv, capsys):
    rc = main(argv)
    out = capsys.readouterr()
    assert rc == 0, out.err
    return out.out


def _png_size(path):
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


def test_erf_video_mixers(video_cache, tmp_path, capsys):
    out = tmp_path / "erf.png"
    text = _run(["viz", "erf", "--model", TS1, "--model", f"{TS1},mixer=space_only", "--data-root",
                 str(video_cache), "--num-inputs", "2", "--out", str(out), "--no-progress"], capsys)
    rep = json.loads(out.with_suffix(".json").read_text())
    c, t, h, w = rep["input_shape"]
    assert rep["kind"] == "video" and c == 3 and t > 1
    divided, space = rep["models"]
    assert (divided["mixer"], space["mixer"]) == ("divided", "space_only")
    assert divided["num_inputs"] == space["num_inputs"] == 2 and divided["shape"] == [t, h, w]
    assert space["frame_mass"][t // 2] == 1.0 and space["support"][0] == 1  # only the centre token's own frame
    assert [r["threshold"] for r in divided["area_ratios"]] == [0.2, 0.3, 0.5, 0.99]
    assert all(0 < r["area_ratio"] <= 1 for r in divided["area_ratios"] + divided["temporal_ratios"])
    assert np.load(out.with_suffix(".npz"))["erf_1"].shape == (t, h, w)
    w, h = _png_size(out)
    assert w > 1000 and 300 < h < 450  # two rows of 8 frames + profile
    assert "t=0.99: side" in text and "mass per frame" in text


def test_tsne_video_checkpoint_and_model(video_cache, tmp_path, capsys):
    torch.manual_seed(0)
    ckpt = save_pretrained(create_model("timesformer_tiny", depth=1, mixer="joint"), tmp_path / "joint")
    out = tmp_path / "tsne.png"
    text = _run(["viz", "tsne", "--checkpoint", str(ckpt), "--model", f"{TS1},mixer=space_only",
                 "--data-root", str(video_cache), "--max-samples", "12", "--out", str(out), "--no-progress"], capsys)
    rep = json.loads(out.with_suffix(".json").read_text())
    classes = (video_cache / "builtin_video" / "classes.txt").read_text().split()
    assert rep["num_samples"] == 12 and sum(rep["class_counts"].values()) == 12
    assert set(rep["class_counts"]) <= set(classes) and len(rep["class_counts"]) > 1  # evenly spaced subset
    assert [p["mixer"] for p in rep["panels"]] == ["joint", "space_only"]
    assert rep["panels"][0]["label"] == "joint/model" and rep["panels"][0]["source"] == str(ckpt)
    for p in rep["panels"]:
        assert 0 <= p["knn_acc_2d"] <= 1 and -1 <= p["silhouette_2d"] <= 1
    d = np.load(out.with_suffix(".npz"))
    assert d["tsne_0"].shape == d["tsne_1"].shape == (12, 2) and d["embeddings_0"].shape == (12, 128)
    assert list(d["class_names"]) == classes
    assert _png_size(out) == (840, 518)
    assert "kNN-5 acc 2D" in text and "silhouette 2D" in text


def test_image_folder_erf_and_tsne(image_root, tmp_path, capsys):
    model = "vit_tiny_builtin:depth=1,img_size=48"
    out = tmp_path / "erf.png"
    _run(["viz", "erf", "--model", model, "--data", "imagenet", "--data-root", str(image_root),
          "--num-inputs", "2", "--out", str(out), "--no-progress"], capsys)
    rep = json.loads(out.with_suffix(".json").read_text())
    assert rep["input_shape"] == [3, 48, 48] and rep["models"][0]["shape"] == [48, 48]  # the model's img_size
    assert _png_size(out) == (410, 440)
    out = tmp_path / "tsne.png"
    _run(["viz", "tsne", "--model", model, "--data", "imagenet", "--data-root", str(image_root),
          "--out", str(out), "--no-progress"], capsys)
    rep = json.loads(out.with_suffix(".json").read_text())
    assert rep["class_counts"] == {"n001": 3, "n002": 3}


def test_volume_erf_and_organ_tsne(volume_root, tmp_path, capsys):
    model = "unetr_tiny:img_size=[16,16,16],num_layers=3,feature_size=4"
    out = tmp_path / "erf.png"
    _run(["viz", "erf", "--model", model, "--data", "btcv", "--data-root", str(volume_root), "--num-inputs", "1",
          "--out", str(out), "--no-progress"], capsys)
    rep = json.loads(out.with_suffix(".json").read_text())
    m = rep["models"][0]
    assert rep["input_shape"] == [1, 16, 16, 16] and m["shape"] == [16, 16, 16] and m["num_inputs"] == 1
    assert m["area_ratios"][-1]["side"] <= 16 and len(m["support"]) == 3
    out = tmp_path / "tsne.png"
    _run(["viz", "tsne", "--model", model, "--data", "btcv", "--data-root", str(volume_root),
          "--out", str(out), "--no-progress"], capsys)
    rep = json.loads(out.with_suffix(".json").read_text())
    assert rep["class_counts"] == {k: 2 for k in ("liver", "spleen", "kidney_l", "kidney_r", "aorta")}


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main(["viz", "erf", "--out", str(tmp_path / "e.png")]) == 2
    assert "give at least one --checkpoint or --model" in capsys.readouterr().err
    assert main(["viz", "erf", "--model", "vit_tiny_builtin", "--model", TS1, "--out", str(tmp_path / "e.png"),
                 "--data", "kinetics", "--data-root", str(tmp_path)]) == 2
    assert "same input kind" in capsys.readouterr().err
    assert main(["viz", "erf", "--model", "vit_tiny_builtin", "--out", str(tmp_path / "e.png"),
                 "--data", "kinetics", "--data-root", str(tmp_path)]) == 2
    assert "data.dataset (--data) must be 'builtin' or 'imagenet', got 'kinetics'" in capsys.readouterr().err
    assert main(["viz", "tsne", "--model", "timesformer_tiny:attention", "--out", str(tmp_path / "t.png")]) == 2
    assert "expected key=value" in capsys.readouterr().err


def test_model_spec_parsing():
    from spatiotemporal.viz import parse_model_spec

    assert parse_model_spec("unetr_tiny:img_size=[16,16,16],mixer_kwargs.ndim=3,init_values=null") == (
        "unetr_tiny", {"img_size": [16, 16, 16], "mixer_kwargs": {"ndim": 3}, "init_values": None})
    assert parse_model_spec("vit_tiny_builtin") == ("vit_tiny_builtin", {})
