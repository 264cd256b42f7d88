"""A checkpoint carries the preprocessing it was trained with: predictions from the run folder and from a lone copy
of the checkpoint are identical, overrides still win (and are logged), and old checkpoints fall back loudly."""

import json
import logging
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from spatiotemporal import load_pretrained
from spatiotemporal.cli.main import main

pytestmark = pytest.mark.usefixtures("module_cache")


def _train(tmp_path, family, *overrides):
    out = tmp_path / family
    assert main(["train", family, "--out", str(out), "--max-steps", "1", "--epochs", "1", "--workers", "0",
                 "--batch-size", "2", *overrides]) == 0
    lone = tmp_path / "elsewhere" / family
    lone.mkdir(parents=True)
    shutil.copy(out / "checkpoints" / "last.pt", lone / "model.pt")  # no config.yaml anywhere near it
    return out / "checkpoints" / "last.pt", lone / "model.pt"


def _predict(capsys, *args):
    capsys.readouterr()
    assert main(["predict", *map(str, args)]) == 0
    return capsys.readouterr().out


def test_unetr_with_its_own_spacing_predicts_the_same_from_a_lone_checkpoint(tmp_path, capsys, caplog):
    run_ckpt, lone = _train(tmp_path, "unetr", "data.volume.pixdim=[1.8,1.8,2.2]", "model.overrides.num_layers=2")
    stored = torch.load(lone, weights_only=True)["task"]["spec"]
    assert stored["preprocessing"]["volume"]["pixdim"] == [1.8, 1.8, 2.2] and stored["modality"] == "volume"
    from spatiotemporal.data.volume import ensure_builtin_volume_dataset

    ct = sorted((ensure_builtin_volume_dataset() / "imagesTr").glob("*.nii.gz"))[0]
    maps = {}
    for name, ckpt, extra in (("run", run_ckpt, []), ("lone", lone, []),
                              ("builtin", lone, ["data.volume.pixdim=[2.5,2.5,3.0]"])):
        out = tmp_path / f"{name}.nii.gz"
        with caplog.at_level(logging.INFO, logger="spatiotemporal.pipelines"):
            _predict(capsys, ct, "--checkpoint", ckpt, "--out", out, *extra)
        img = nib.load(str(out))
        assert img.shape == nib.load(str(ct)).shape and np.allclose(img.affine, nib.load(str(ct)).affine)
        maps[name] = np.asarray(img.dataobj)
    assert np.array_equal(maps["run"], maps["lone"])
    assert "data.volume.pixdim = [2.5, 2.5, 3.0] from the command line (the checkpoint has [1.8, 1.8, 2.2])" \
        in caplog.text
    assert not np.array_equal(maps["lone"], maps["builtin"])  # the stored spacing is what made the difference


def test_timesformer_with_its_own_sampling_predicts_the_same_from_a_lone_checkpoint(tmp_path, capsys):
    run_ckpt, lone = _train(tmp_path, "timesformer", "data.video.sampling_rate=1", "model.overrides.depth=1")
    model = load_pretrained(lone)
    assert model.pretrained_cfg["preprocessing"]["video"]["sampling_rate"] == 1
    from spatiotemporal.data.video import ensure_builtin_video_dataset

    root = ensure_builtin_video_dataset()
    video = root / (root / "val.csv").read_text().split()[0]
    outs = [json.loads(_predict(capsys, video, "--checkpoint", c, "--json")) for c in (run_ckpt, lone)]
    assert outs[0]["top"] == outs[1]["top"]
    other = json.loads(_predict(capsys, video, "--checkpoint", lone, "--json", "data.video.sampling_rate=2"))
    assert other["top"] != outs[1]["top"]  # every 2nd frame is another input: the stored rate was used above


def test_checkpoint_from_before_format_2_falls_back_and_says_what_it_assumed(tmp_path, capsys, caplog):
    _, lone = _train(tmp_path, "timesformer", "model.overrides.depth=1")
    ckpt = torch.load(lone, weights_only=True)
    spec = ckpt["task"].pop("spec")
    cfg = dict(spec["config"])
    cfg["attention"] = cfg.pop("mixer")
    cfg.pop("framewise")
    ckpt["task"] = {"model_spec": {"arch": "timesformer", "config": cfg, "format_version": 1},
                    "class_names": spec["class_names"]}
    old = tmp_path / "old" / "model.pt"
    old.parent.mkdir()
    torch.save(ckpt, old)
    from spatiotemporal.data.video import ensure_builtin_video_dataset

    root = ensure_builtin_video_dataset()
    video = root / (root / "val.csv").read_text().split()[0]
    with caplog.at_level(logging.WARNING, logger="spatiotemporal.pipelines"):
        res = json.loads(_predict(capsys, video, "--checkpoint", old, "--json"))
    assert "stores no preprocessing and has no run folder: assuming the built-in recipe 'timesformer_tiny_builtin'" \
        in caplog.text and "8 frames at stride 2, 32 px" in caplog.text
    assert {r["class"] for r in res["top"]} == set(spec["class_names"])


def test_predict_refuses_another_modality_in_one_line(tmp_path, capsys):
    _, lone = _train(tmp_path, "timesformer", "model.overrides.depth=1")
    ct = tmp_path / "x.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.float32), np.eye(4)), str(ct))
    capsys.readouterr()
    assert main(["predict", str(ct), "--checkpoint", str(lone)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"spatio predict: error: {ct} looks like a volume file, but {lone} is a video model (it takes "
                   ".mp4, .avi, .mkv, .webm, .mov, .m4v, .mpg, .mpeg, .flv, .ogv)")
    assert len(Path(ct).read_bytes()) > 0
