"""The dataset name picks the annotation reader: ``--data ssv2`` reads the SSv2 JSON files with any recipe."""

from __future__ import annotations

import json
import logging

from spatiotemporal.pipelines.video import VideoPipeline


def _ssv2(root):
    root.mkdir()
    (root / "something-something-v2-labels.json").write_text(json.dumps({"Pushing x": "0", "Pulling x": "1"}))
    for split, ids in (("train", [1, 2, 3]), ("validation", [4])):
        items = [{"id": str(i), "template": ["Pushing [x]", "Pulling [x]"][i % 2]} for i in ids]
        (root / f"something-something-v2-{split}.json").write_text(json.dumps(items))
    return root


def test_data_ssv2_reads_the_json_files_with_a_csv_recipe(tmp_path, caplog):
    root = _ssv2(tmp_path / "ssv2")
    pipe = VideoPipeline()
    with caplog.at_level(logging.WARNING, "spatiotemporal"):
        recipe = pipe.load_recipe("timesformer_tiny_builtin", ["data.dataset=ssv2", f"data.root={root}"])
        assert recipe.data.video.annotation == "csv"  # the recipe's; asked for train.csv before
        assert pipe.class_names(recipe) == ["Pushing x", "Pulling x"]
        train, val = pipe.datasets(recipe)
    assert [(p.name, y) for p, y in train.samples] == [("1.webm", 1), ("2.webm", 0), ("3.webm", 1)]
    assert len(val) == 1 and recipe.data.video.annotation == "ssv2" and not caplog.records  # the default: no note
    (root / "train.csv").write_text("a.mp4 0\n")
    (root / "classes.txt").write_text("only\n")
    recipe = pipe.load_recipe("timesformer_base_ssv2", ["data.dataset=kinetics", f"data.root={root}"])
    with caplog.at_level(logging.WARNING, "spatiotemporal"):
        assert pipe.class_names(recipe) == ["only"]
    assert [r.getMessage() for r in caplog.records] == [
        "data.video.annotation=ssv2 ignored: --data kinetics is read with the csv reader (the dataset name picks it)"]
