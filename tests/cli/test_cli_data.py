"""Datasets as users bring them: a labels CSV saved on Windows (BOM, CRLF) with spaces in paths, a dataset JSON not
named dataset_0.json (--data-file), another split file; eval shows its progress off a terminal."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
import torch

from spatiotemporal.cli.main import main
from spatiotemporal.data.video import load_test_views
from spatiotemporal.models import load_pretrained
from spatiotemporal.pipelines import pipeline_for
from spatiotemporal.pipelines.classification import ClassificationTask

pytestmark = pytest.mark.usefixtures("module_cache")


@pytest.fixture(scope="module")
def video_root():
    from spatiotemporal.data.video import ensure_builtin_video_dataset

    return ensure_builtin_video_dataset()


TINY = ["--max-steps", "1", "--epochs", "1", "--workers", "0", "--batch-size", "2"]


def test_a_windows_csv_with_a_bom_and_spaces_in_paths_reads_every_row(video_root, tmp_path, capsys):
    root = tmp_path / "kinetics"
    (root / "my clips").mkdir(parents=True)
    rows = []
    for i, line in enumerate((video_root / "train.csv").read_text().splitlines()[:6]):
        src, label = line.split()
        name = f"clip {i}, take 2.mp4"  # a space and a comma: quoted
        shutil.copy(video_root / src, root / "my clips" / name)
        rows.append(f'"my clips/{name}",{label}')
    text = "\ufeffpath,label\r\n" + "\r\n".join(rows) + "\r\n"
    for split in ("train", "val", "test"):
        (root / f"{split}.csv").write_bytes(text.encode("utf-8"))
    shutil.copy(video_root / "classes.txt", root / "classes.txt")
    out = tmp_path / "run"
    assert main(["train", "timesformer", "--config", "timesformer_tiny_builtin", "--data", "kinetics", "--data-root",
                 str(root), "--out", str(out), *TINY, "model.overrides.depth=1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped_inputs"] == 0 and summary["final_metrics"]["num_samples"] == 6  # the first row too
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(out / "checkpoints" / "last.pt"), "--split", "test",
                 "--data-root", str(root), "--workers", "0"]) == 0
    assert json.loads(capsys.readouterr().out.split("\nwrote ")[0])["num_samples"] == 6


def test_a_dataset_json_of_another_name_is_chosen_with_data_file(tmp_path, capsys):
    from spatiotemporal.data.volume import ensure_builtin_volume_dataset

    root = tmp_path / "btcv"
    shutil.copytree(ensure_builtin_volume_dataset(), root)
    (root / "dataset_0.json").rename(root / "my_split.json")
    out = tmp_path / "run"
    common = ["train", "unetr", "--config", "unetr_tiny_builtin", "--data", "btcv", "--data-root", str(root),
              "--out", str(out), *TINY, "model.overrides.num_layers=2"]
    capsys.readouterr()
    assert main(common) == 2
    assert capsys.readouterr().err.strip() == (
        f"spatio train: error: dataset JSON {root / 'dataset_0.json'} not found (the JSON files there: my_split.json): "
        "choose the dataset's decathlon-style JSON with --data-file NAME (recipe key data.json_name)")
    assert not out.exists()
    assert main([*common, "--data-file", "my_split.json"]) == 0
    assert (out / "checkpoints" / "last.pt").is_file()


def test_eval_off_a_terminal_writes_plain_progress_lines_and_takes_another_split_file(video_root, tmp_path, capsys,
                                                                                      caplog):
    out = tmp_path / "run"
    assert main(["train", "timesformer", "--out", str(out), *TINY, "model.overrides.depth=1"]) == 0
    root = tmp_path / "data"
    shutil.copytree(video_root, root)
    (root / "val_small.csv").write_text("\n".join((root / "val.csv").read_text().splitlines()[:6]) + "\n")
    capsys.readouterr()
    with caplog.at_level(logging.INFO, logger="spatiotemporal.progress"):
        assert main(["eval", "--checkpoint", str(out / "checkpoints" / "last.pt"), "--split", "val", "--data",
                     "kinetics", "--data-root", str(root), "--data-file", "val=val_small.csv", "--batch-size", "2",
                     "--workers", "0"]) == 0
    assert json.loads(capsys.readouterr().out.split("\nwrote ")[0])["num_samples"] == 6
    lines = [r.getMessage() for r in caplog.records if r.name == "spatiotemporal.progress"]
    assert lines[0] == "eval val: 3 batches"
    assert lines[1].startswith("eval val: 1/3 batches (") and lines[-1].startswith("eval val: 3/3 batches (")
    assert "eta 00:00:00" in lines[-1]


def test_every_training_video_corrupt_or_an_empty_val_csv_stops_in_one_line(video_root, tmp_path, capsys):
    root = tmp_path / "kinetics"
    shutil.copytree(video_root, root)
    for line in (root / "train.csv").read_text().splitlines():
        (root / line.split()[0]).write_text("not a video")
    out = tmp_path / "run"
    common = ["train", "timesformer", "--config", "timesformer_tiny_builtin", "--data", "kinetics", "--data-root",
              str(root), "--out", str(out), "--workers", "0", "--batch-size", "50", "--epochs", "1",
              "model.overrides.depth=1"]
    capsys.readouterr()
    assert main(common) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spatio train: error: epoch 1 had no usable training sample in 8 batches per rank: 400 "
                          f"inputs were skipped as unreadable (e.g. {root}/") and "\n" not in err
    assert not (out / "checkpoints").exists()  # no best.pt of a model trained on nothing
    (root / "val.csv").write_text("")
    assert main(common) == 2
    assert capsys.readouterr().err.strip() == (f"spatio train: error: {root / 'val.csv'}: no samples; expected one "
                                               "'path label' or 'path,label' per line")


def test_predict_combines_the_views_by_the_rule_eval_uses(video_root, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "timesformer", "--out", str(out), *TINY, "model.overrides.depth=1",
                 "data.video.test_num_crops=3"]) == 0
    ckpt = out / "checkpoints" / "last.pt"
    video = video_root / (video_root / "val.csv").read_text().split()[0]
    capsys.readouterr()
    assert main(["predict", str(video), "--checkpoint", str(ckpt), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    model = load_pretrained(ckpt)
    recipe = pipeline_for(model).recipe_from_checkpoint(model, [], ckpt)
    with torch.inference_mode():
        per_view = model(load_test_views(video, recipe.data.video))  # (V, K)
    assert res["views"] == per_view.shape[0] == recipe.data.video.num_views > 1
    assert res["view_reduce"] == recipe.data.view_reduce == "mean"
    probs = per_view.mean(0).softmax(-1)  # the mean of the view logits, as ClassificationTask.evaluate combines them
    assert torch.allclose(ClassificationTask("video").combine_views(per_view[None])[0], per_view.mean(0))
    for r in res["top"]:
        assert r["probability"] == pytest.approx(float(probs[r["index"]]), abs=1e-6)
