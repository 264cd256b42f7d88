"""The MViT families through the unchanged `spatio` command: train, eval, predict and viz on the built-in sets;
inflation of timm's 2D MViTv2 weights on the command line."""

import json
from pathlib import Path

import pytest
import torch
from testing_utils import randomize_

from spatiotemporal.cli.main import main
from spatiotemporal.models import load_pretrained

pytestmark = pytest.mark.usefixtures("module_cache")


def test_train_eval_predict_viz_mvit(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "mvit", "--out", str(out), "--max-steps", "2", "--epochs", "1", "--workers", "0",
                 "--batch-size", "4", "model.overrides.depths=[1,1]", "model.overrides.recompute=full"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2 and (out / "checkpoints" / "best.pt").exists()
    ckpt = out / "checkpoints" / "last.pt"
    trained = load_pretrained(ckpt)  # recompute is in the config, not in the weights: a strict load without it
    assert trained.encoder.recompute == "full" and load_pretrained(ckpt, recompute="none").encoder.recompute == "none"
    capsys.readouterr()
    assert main(["eval", "mvit", "--checkpoint", str(ckpt), "--split", "val", "--workers", "0"]) == 0
    metrics = json.loads(next(out.glob("checkpoints/eval_*.json")).read_text())
    assert metrics["num_samples"] == 100

    from spatiotemporal.data.video import ensure_builtin_video_dataset

    root = ensure_builtin_video_dataset()
    video = root / Path((root / "val.csv").read_text().split()[0])
    capsys.readouterr()
    assert main(["predict", str(video), "--checkpoint", str(ckpt), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert len(res["top"]) == 4 and abs(sum(r["probability"] for r in res["top"]) - 1) < 1e-4
    png = tmp_path / "erf.png"
    assert main(["viz", "erf", "--checkpoint", str(ckpt), "--num-inputs", "2", "--no-progress", "--out",
                 str(png)]) == 0
    assert png.exists() and json.loads(png.with_suffix(".json").read_text())["models"][0]["num_inputs"] == 2


def test_train_mvit_unetr_on_the_phantoms(tmp_path):
    out = tmp_path / "vol"
    assert main(["train", "mvit_unetr", "--out", str(out), "--max-steps", "1", "--epochs", "1", "--workers", "0",
                 "model.overrides.depths=[1,1,1]", "train.eval_every=0"]) == 0
    assert json.loads((out / "summary.json").read_text())["steps"] == 1


def test_inflate_timm_mvitv2_on_the_command_line(tmp_path):
    from timm.models.mvitv2 import MultiScaleVit, MultiScaleVitCfg

    src = tmp_path / "mvitv2.pth"
    torch.save(randomize_(MultiScaleVit(MultiScaleVitCfg(depths=(1, 1, 1, 1), embed_dim=16), img_size=32,
                                        num_classes=4)).state_dict(), src)
    out = tmp_path / "video.safetensors"
    assert main(["inflate", str(src), "--to", "mvit_tiny", "num_frames=4", "img_size=32", "--num-classes", "4",
                 "--depth-mode", "average", "--out", str(out)]) == 0
    spec = json.loads(out.with_suffix(".json").read_text())
    assert spec["arch"] == "mvit" and spec["config"]["depths"] == [1, 1, 1, 1] and spec["config"]["embed_dim"] == 16
