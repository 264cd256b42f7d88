"""Datasets as users bring them: a labels CSV saved on Windows (BOM, CRLF) with spaces in paths, a dataset JSON not
named dataset_0.json (--data-file), another split file; eval shows its progress off a terminal."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from spatiotemporal.cli.main import main


@pytest.fixture(scope="module", autouse=True)
def _cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("SPATIO_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


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
