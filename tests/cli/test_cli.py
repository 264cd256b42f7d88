"""The `spatio` command end to end on the built-in data: train, resume, eval, predict, inflate, configs."""

import json
from pathlib import Path

import pytest
import torch

from spatiotemporal.cli.main import main
from spatiotemporal.engine import ConfigError
from spatiotemporal.pipelines import config_dir, get_pipeline, known_recipes, pipeline_for_recipe

pytestmark = pytest.mark.usefixtures("module_cache")


@pytest.mark.parametrize("name", known_recipes())
def test_every_recipe_loads(name):
    recipe = pipeline_for_recipe(name).load_recipe(name, [])
    assert recipe.model.name and recipe.train.epochs >= 1
    assert (config_dir() / f"{name}.yaml").is_file()


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError) as e:
        get_pipeline("video").load_recipe("timesformer_tiny_builtin", ["train.optim.learning_rate=0.1"])
    msg = str(e.value)
    assert "learning_rate" in msg and "lr" in msg and "weight_decay" in msg


def test_models_command(capsys):
    assert main(["models", "timesformer"]) == 0
    out = capsys.readouterr().out
    assert "timesformer_base" in out and "timesformer_tiny" in out


def test_bad_data_name_is_a_clear_error(capsys):
    assert main(["train", "timesformer", "--data", "ucf101"]) == 2
    assert "no recipe for timesformer on --data ucf101 (recipes for timesformer: builtin, kinetics, ssv2)" in \
        capsys.readouterr().err


def test_train_eval_predict_timesformer(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "timesformer", "--out", str(out), "--max-steps", "2", "--epochs", "1", "--workers", "0",
            "--batch-size", "4", "model.overrides.depth=1"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["skipped_inputs"] == 0
    assert (out / "config.yaml").exists() and (out / "checkpoints" / "best.pt").exists()
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("val/top1" in x for x in lines)

    capsys.readouterr()
    ckpt = out / "checkpoints" / "last.pt"
    assert main(["eval", "timesformer", "--checkpoint", str(ckpt), "--split", "val", "--workers", "0"]) == 0
    metrics = json.loads(next(out.glob("checkpoints/eval_*.json")).read_text())
    assert metrics["num_samples"] == 100 and 0 <= metrics["top1"] <= 100

    from spatiotemporal.data.video import ensure_builtin_video_dataset

    root = ensure_builtin_video_dataset()
    video = root / Path((root / "val.csv").read_text().split()[0])
    capsys.readouterr()
    assert main(["predict", str(video), "--checkpoint", str(ckpt), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    names = (root / "classes.txt").read_text().split()
    assert len(res["top"]) == 4 and {r["class"] for r in res["top"]} == set(names)
    assert abs(sum(r["probability"] for r in res["top"]) - 1) < 1e-4


def test_inflate_command_then_init(tmp_path):
    vit_run = tmp_path / "vit"
    assert main(["train", "vit", "--out", str(vit_run), "--max-steps", "1", "--epochs", "1", "--workers", "0",
                 "--batch-size", "8", "model.overrides.depth=1"]) == 0
    init = tmp_path / "ts_init.safetensors"
    assert main(["inflate", str(vit_run / "checkpoints" / "last.pt"), "--to", "timesformer", "num_frames=8",
                 "img_size=32", "--num-classes", "4", "--out", str(init)]) == 0
    assert init.exists() and init.with_suffix(".json").exists()
    spec = json.loads(init.with_suffix(".json").read_text())
    assert spec["arch"] == "timesformer" and spec["config"]["num_classes"] == 4 and spec["config"]["depth"] == 1
    run = tmp_path / "ts"
    assert main(["train", "timesformer", "--out", str(run), "--max-steps", "1", "--epochs", "1", "--workers", "0",
                 "--batch-size", "4", "--init", str(vit_run / "checkpoints" / "last.pt"),
                 "model.overrides.depth=1"]) == 0


def test_same_seed_same_run(tmp_path):
    """Initial weights and data order are functions of --seed (torch's own default seed is random per process)."""
    def weights(seed: int, name: str) -> dict:
        out = tmp_path / name
        assert main(["train", "vit", "--out", str(out), "--max-steps", "1", "--epochs", "1", "--workers", "0",
                     "--batch-size", "8", "--seed", str(seed), "model.overrides.depth=1"]) == 0
        return torch.load(out / "checkpoints" / "last.pt", weights_only=True)["model"]

    a, b, c = weights(5, "a"), weights(5, "b"), weights(6, "c")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
