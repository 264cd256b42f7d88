"""SegFormer (2D), UNETR2D and SegFormer3D through the unchanged CLI: train, evaluate and predict on the built-in
sets; 2D label maps keep the image's size, 3D ones the volume's exact shape and affine."""

import json
import shutil

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from spatiotemporal.cli.main import main
from spatiotemporal.data.image_seg import ensure_builtin_seg_dataset, load_seg_folder
from spatiotemporal.data.volume import ensure_builtin_volume_dataset, load_volume_datalist

TINY_MIT = ["model.overrides.embed_dims=[8,16,24,32]", "model.overrides.num_heads=[1,1,1,1]",
            "model.overrides.depths=[1,1,1,1]", "model.overrides.decoder_dim=16"]
TINY = {"segformer": [*TINY_MIT, "model.overrides.recompute=pointwise"],
        "unetr2d": ["model.overrides.num_layers=4", "model.overrides.hidden_size=32", "model.overrides.mlp_dim=64",
                    "model.overrides.feature_size=8"]}


def _small_folder(root):
    """A few built-in slices copied into a folder dataset of their own (images/, masks/, class_names.txt)."""
    src = load_seg_folder(ensure_builtin_seg_dataset())
    for split, n in (("train", 4), ("val", 3)):
        for kind, key in (("images", "image"), ("masks", "label")):
            (root / kind / split).mkdir(parents=True)
            for item in src.items[split][10:10 + n]:
                shutil.copy(item[key], root / kind / split)
    shutil.copy(src.root / "class_names.txt", root)
    return root


@pytest.mark.parametrize("family", ["segformer", "unetr2d"])
def test_train_eval_predict_2d(family, tmp_path, capsys):
    run, data = tmp_path / "run", _small_folder(tmp_path / "data")
    assert main(["train", family, *TINY[family], "--data", "folder", "--data-root", str(data), "--out", str(run),
                 "--max-steps", "2", "--epochs", "1", "--batch-size", "2", "--workers", "0"]) == 0
    ckpt = run / "checkpoints" / "last.pt"
    capsys.readouterr()
    assert main(["eval", family, "--checkpoint", str(ckpt), "--split", "val", "--workers", "0"]) == 0
    out = capsys.readouterr().out
    metrics = json.loads(out[out.index("{"):out.rindex("}") + 1])
    assert metrics["split"] == "val" and metrics["num_samples"] == 3 and 0.0 <= metrics["mean_dice"] <= 1.0
    image = load_seg_folder(data).items["val"][1]["image"]
    out = tmp_path / "pred.png"
    assert main(["predict", image, "--checkpoint", str(ckpt), "--out", str(out)]) == 0
    pred, src = np.asarray(Image.open(out)), np.asarray(Image.open(image))
    assert pred.shape == src.shape and pred.max() < 6


def test_segformer3d_trains_and_predicts_in_patient_space(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "segformer3d", *TINY_MIT, "--out", str(run), "--max-steps", "1", "--epochs", "1",
                 "--workers", "0"]) == 0
    out = capsys.readouterr().out
    assert "kidney_l" in out and "mean (fg)" in out  # the per-organ Dice table of the final evaluation
    root = ensure_builtin_volume_dataset()
    case = load_volume_datalist(root).validation[0]["image"]
    pred = tmp_path / "pred.nii.gz"
    assert main(["predict", case, "--checkpoint", str(run / "checkpoints" / "last.pt"), "--out", str(pred)]) == 0
    src, lab = nib.load(case), nib.load(str(pred))
    assert lab.shape == src.shape and np.allclose(lab.affine, src.affine)
    # eval with every inference option: flips, largest component, HD95 and surface Dice on both grids
    capsys.readouterr()
    report = tmp_path / "eval.json"
    assert main(["eval", "--checkpoint", str(run / "checkpoints" / "last.pt"), "--split", "val", "--json", str(report),
                 "data.inference.surface_metrics=true", "data.inference.tta_flips=single",
                 "data.inference.largest_component=true"]) == 0
    metrics = json.loads(report.read_text())
    for grid in (metrics, metrics["resampled_grid"]):
        assert grid["mean_hd95"] > 0 and 0 <= grid["mean_nsd"] <= 1 and 0 <= grid["mean_dice"] <= 1
