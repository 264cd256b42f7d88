"""More video layouts through the real loaders: frame folders (a JPEG per frame), Something-Something V2 (its JSON
labels, segment sampling, the TimeSformer SSv2 recipe with its 3-crop test) on generated fixtures."""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from spatiotemporal.cli.main import main
from spatiotemporal.data.video import VideoClipDataset, VideoDataConfig, ensure_builtin_video_dataset
from spatiotemporal.data.video.decode import read_clip
from spatiotemporal.data.video.sampling import segment_indices
from spatiotemporal.data.video.ssv2 import read_ssv2_split

TEMPLATES = ["Pushing something from left to right", "Pushing something from right to left"]


def write_frames(folder, n=20, size=48, right=True):
    """A bright 8 px square moving one step per frame (to the right or to the left) on gray, as JPEGs."""
    folder.mkdir(parents=True)
    for i in range(n):
        img = np.full((size, size, 3), 90, np.uint8)
        x = 2 + i * 2 if right else size - 10 - i * 2
        img[20:28, x:x + 8] = 250
        Image.fromarray(img).save(folder / f"img_{i + 1:05d}.jpg", quality=95)


def test_segment_sampling_is_the_official_rule():
    assert segment_indices(20, 4).tolist() == [2, 7, 12, 16]  # segments (0,5) (5,10) (10,14) (14,19), middles
    rng = np.random.default_rng(0)
    for _ in range(20):
        idx = segment_indices(20, 4, rng)
        assert all(a <= i <= b for i, (a, b) in zip(idx, [(0, 5), (5, 10), (10, 14), (14, 19)]))


def test_frame_folder_reads_like_a_video(tmp_path):
    write_frames(tmp_path / "v")
    clip = read_clip(tmp_path / "v", lambda n, fps: np.array([0, 10, 19]))
    assert clip.backend == "frames" and clip.num_frames == 20 and clip.frames.shape == (3, 48, 48, 3)
    cols = [int(np.argmax(f[24, :, 0].numpy() > 200)) for f in clip.frames]
    assert cols == [2, 22, 40]  # the square's left edge in frames 1, 11 and 20
    half = read_clip(tmp_path / "v", lambda n, fps: np.array([0]), short_side=24).frames
    assert half.shape == (1, 24, 24, 3)
    (tmp_path / "empty").mkdir()
    from spatiotemporal.data.video.decode import VideoDecodeError

    with pytest.raises(VideoDecodeError, match="frame folder without"):
        read_clip(tmp_path / "empty", lambda n, fps: np.array([0]))


@pytest.fixture(scope="module")
def ssv2_root(tmp_path_factory):
    """Labels JSON, train/validation JSON; videos as frame folders, one as an mp4, one missing."""
    root = tmp_path_factory.mktemp("ssv2")
    (root / "something-something-v2-labels.json").write_text(json.dumps({t: str(i) for i, t in enumerate(TEMPLATES)}))
    train, val = [], []
    for i in range(8):
        right = i % 2 == 0
        write_frames(root / "frames" / str(100 + i), right=right)
        train.append({"id": str(100 + i), "template": TEMPLATES[0 if right else 1].replace("something", "[something]"),
                      "label": "x", "placeholders": ["a cup"]})
    for i in range(2):
        write_frames(root / "frames" / str(200 + i), right=i == 0)
        val.append({"id": str(200 + i), "template": TEMPLATES[i], "label": "x", "placeholders": []})
    cache = tmp_path_factory.mktemp("cache")
    mp4 = ensure_builtin_video_dataset(cache) / "val" / "000000.mp4"
    shutil.copy(mp4, root / "frames" / "300.mp4")
    val.append({"id": "300", "template": TEMPLATES[0], "label": "x", "placeholders": []})
    val.append({"id": "404", "template": TEMPLATES[1], "label": "x", "placeholders": []})  # missing: skipped
    (root / "something-something-v2-train.json").write_text(json.dumps(train))
    (root / "something-something-v2-validation.json").write_text(json.dumps(val))
    return root


def test_ssv2_json_labels_and_dataset(ssv2_root):
    samples, names = read_ssv2_split(ssv2_root, "val", ssv2_root / "frames")
    assert names == TEMPLATES and [s[1] for s in samples] == [0, 1, 0, 1]
    assert samples[0][0].is_dir() and samples[2][0].suffix == ".mp4" and samples[3][0].name == "404.webm"
    cfg = VideoDataConfig(annotation="ssv2", sampling="segments", num_frames=4, train_jitter_scales=(32, 40),
                          crop_size=32, test_num_clips=1, test_num_crops=3, random_flip=False, path_prefix="frames")
    ds = VideoClipDataset(ssv2_root, "val", cfg, multi_view=True)
    item = ds[0]
    assert item["video"].shape == (3, 3, 4, 32, 32) and item["label"] == 0
    assert ds[2]["video"].shape == (3, 3, 4, 32, 32)  # an mp4 among frame folders
    assert "skipped" in ds[3]
    with pytest.raises(ValueError, match="test_num_clips must be 1"):
        VideoDataConfig(sampling="segments", test_num_clips=2)


def test_ssv2_recipe_trains_and_evaluates_with_three_crops(ssv2_root, tmp_path, capsys):
    out = tmp_path / "run"
    small = ["model.overrides.depth=1", "model.overrides.embed_dim=64", "model.overrides.num_heads=2",
             "model.overrides.patch_size=8", "data.video.num_frames=4", "data.video.crop_size=32",
             "data.video.train_jitter_scales=[32,40]", "data.video.path_prefix=frames"]
    rc = main(["train", "timesformer_tiny", "--data", "ssv2", "--data-root", str(ssv2_root), "--out", str(out),
               "--epochs", "1", "--batch-size", "4", "--workers", "0", *small])
    assert rc == 0, capsys.readouterr().err
    rc = main(["eval", "--checkpoint", str(out / "checkpoints" / "last.pt"), "--split", "val", "--workers", "0",
               "--json", str(tmp_path / "eval.json")])
    assert rc == 0, capsys.readouterr().err
    m = json.loads((tmp_path / "eval.json").read_text())
    assert m["views"] == 3 and m["view_reduce"] == "sum" and m["num_samples"] == 3 and m["skipped"] == 1
    torch.manual_seed(0)


def test_multilabel_csv_trains_with_bce_and_reports_map(tmp_path, capsys):
    from spatiotemporal.pipelines.classification import mean_average_precision

    assert mean_average_precision(torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.7, 0.6]]),
                                  torch.tensor([[1, 0], [0, 1], [1, 1]])) == pytest.approx(100.0)
    src = ensure_builtin_video_dataset(tmp_path / "cache")
    root = tmp_path / "ml"
    root.mkdir()
    (root / "classes.txt").write_text("dog\nball\nperson\n")
    tags = ["dog;ball", "person", "ball;person", "dog"]
    for split, n in (("train", 8), ("val", 4), ("test", 4)):
        folder = "train" if split == "train" else "val"
        lines = [f"{src / folder / f'{i:06d}.mp4'} {tags[i % 4]}" for i in range(n)]
        (root / f"{split}.csv").write_text("\n".join(lines) + "\n")
    from spatiotemporal.data.labels_csv import read_multilabel_csv

    samples, names = read_multilabel_csv(root / "train.csv", class_names=["dog", "ball", "person"])
    assert samples[0][1] == [0, 1] and samples[1][1] == [2]
    out = tmp_path / "run"
    over = ["model.overrides.depth=1", "data.video.multi_label=true", "data.video.num_frames=4"]
    rc = main(["train", "timesformer", "--data", "kinetics", "--config", "timesformer_tiny_builtin", "--data-root",
               str(root), "--out", str(out), "--epochs", "1", "--batch-size", "4", "--workers", "0", *over])
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["primary_metric"] == "map" and 0 <= summary["final_metrics"]["map"] <= 100
    capsys.readouterr()
    rc = main(["predict", str(src / "val" / "000000.mp4"), "--checkpoint", str(out / "checkpoints" / "last.pt"),
               "--json", "--topk", "3"])
    res = json.loads(capsys.readouterr().out)
    assert rc == 0 and sorted(r["class"] for r in res["top"]) == ["ball", "dog", "person"]
    assert sum(r["probability"] for r in res["top"]) != pytest.approx(1.0, abs=1e-6)  # sigmoids, not a softmax
