"""The built-in temporal-order video dataset: files, CSVs, balance, caching, and that order is required."""

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from spatiotemporal.data.labels_csv import read_labels_csv
from spatiotemporal.data.video import (
    VideoClipDataset,
    builtin_video_config,
    ensure_builtin_video_dataset,
    generate_builtin_video_dataset,
    open_video,
    train_clip_indices,
    uniform_clip_indices,
)
from spatiotemporal.data.video import synthetic as syn

SMALL = {"train": 160, "val": 80, "test": 8}
CLIP = [0, 2, 4, 6, 8, 10, 12, 15]


@pytest.fixture(scope="module")
def small_root(tmp_path_factory) -> Path:
    return generate_builtin_video_dataset(tmp_path_factory.mktemp("builtin"), split_sizes=SMALL, seed=0)


@pytest.fixture(scope="module")
def clips(small_root) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The 8 frames the recommended config samples, of every train / val video: float (N, 8, 32, 32, 3)."""
    out = {}
    for split in ("train", "val"):
        samples, _ = read_labels_csv(small_root / f"{split}.csv")
        frames = []
        for path, _ in samples:
            with open_video(path) as v:
                assert v.num_frames == syn.NUM_VIDEO_FRAMES
                frames.append(v.get_frames(CLIP).numpy().astype(np.float32) / 255)
        out[split] = (np.stack(frames), np.array([label for _, label in samples]))
    return out


def test_files_csvs_and_balance(small_root):
    names = (small_root / "classes.txt").read_text().split("\n")[:-1]
    assert names == ["right", "left", "right_then_left", "left_then_right"]
    for split, n in SMALL.items():
        samples, _ = read_labels_csv(small_root / f"{split}.csv", class_names=names)
        assert len(samples) == n and all(p.is_file() and p.suffix == ".mp4" for p, _ in samples)
        assert np.bincount([label for _, label in samples], minlength=4).tolist() == [n // 4] * 4


def test_loader_reads_it_with_the_recommended_config(small_root):
    cfg = builtin_video_config()
    assert cfg.num_frames == syn.STATES and not cfg.random_flip
    # the clip takes one frame per position
    idx = uniform_clip_indices(syn.NUM_VIDEO_FRAMES, syn.FPS, cfg.num_frames, cfg.sampling_rate, 1)[0]
    assert (idx // syn.HOLD).tolist() == list(range(syn.STATES))
    rng = np.random.default_rng(0)
    for _ in range(5):
        idx = train_clip_indices(syn.NUM_VIDEO_FRAMES, syn.FPS, cfg.num_frames, cfg.sampling_rate, rng)
        assert (idx // syn.HOLD).tolist() == list(range(syn.STATES))
    item = VideoClipDataset(small_root, "train", cfg, seed=0)[5]
    assert item["video"].shape == (3, 8, 32, 32) and item["label"] == 1
    test = VideoClipDataset(small_root, "test", cfg)[0]
    assert test["video"].shape == (1, 3, 8, 32, 32)


def test_classes_show_the_same_frames_in_a_different_order():
    """Noise-free render of one scene under every class: the same set of frames, in 4 different orders."""
    renders = [syn.render_frames(label, np.random.default_rng(11), noise=0.0) for label in range(4)]
    sets = [sorted(f.tobytes() for f in frames) for frames, _ in renders]
    assert all(s == sets[0] for s in sets[1:])
    xs = renders[0][1]
    assert len(set(xs.tolist())) == syn.STATES and np.all(np.diff(xs[:: syn.HOLD]) == syn.STEP)  # "right"
    assert len({tuple(x.tolist()) for _, x in renders}) == 4


def test_per_frame_statistics_do_not_depend_on_the_class(clips):
    frames, labels = clips["train"]
    per_class = np.stack([frames[labels == c].mean(axis=(0, 1, 2, 3)) for c in range(4)])  # (4, 3) RGB
    assert np.abs(per_class - per_class.mean(0)).max() < 0.02
    mean, std = frames.mean(axis=(0, 1, 2, 3)), frames.std(axis=(0, 1, 2, 3))
    np.testing.assert_allclose(mean, syn.DATA_MEAN, atol=0.03)
    np.testing.assert_allclose(std, syn.DATA_STD, atol=0.03)


def _order_free_features(x: np.ndarray) -> np.ndarray:
    """Per-frame features (8x8 grey thumbnail, its square, colour moments) averaged over time."""
    n = len(x)
    grey = x.mean(-1).reshape(n, 8, 8, 4, 8, 4).mean((3, 5)).reshape(n, 8, -1)
    colour = x.reshape(n, 8, -1, 3)
    return np.concatenate([grey, grey**2, colour.mean(2), colour.std(2)], -1).mean(1)


def _order_features(x: np.ndarray) -> np.ndarray:
    """Horizontal shift between frames t and t+1 that best aligns them, for each t (frame order used)."""
    g = x.mean(-1)
    g = g - g.mean(axis=1, keepdims=True)  # remove the static background
    shifts = np.arange(-9, 10)
    err = np.stack([((g[:, 1:] - np.roll(g[:, :-1], d, axis=-1)) ** 2).mean((2, 3)) for d in shifts], -1)
    return shifts[err.argmin(-1)].astype(np.float32)  # (N, 7)


def test_order_free_classifier_is_at_chance_order_aware_one_is_not(clips):
    (xtr, ytr), (xva, yva) = clips["train"], clips["val"]
    scores = {}
    for name, feats in (("order_free", _order_free_features), ("order_aware", _order_features)):
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        clf.fit(feats(xtr), ytr)
        scores[name] = clf.score(feats(xva), yva)
    assert scores["order_free"] < 0.45  # chance 0.25; 80 val clips
    assert scores["order_aware"] > 0.9


def test_ensure_caches_atomically_and_regenerates_on_version_change(tmp_path, monkeypatch):
    monkeypatch.setattr(syn, "SPLIT_SIZES", {"train": 8, "val": 4, "test": 4})
    root = ensure_builtin_video_dataset(tmp_path)
    assert root == tmp_path / "builtin_video" and (root / "train.csv").is_file()
    assert json.loads((root / "VERSION").read_text())["version"] == syn.GENERATOR_VERSION
    stamp = (root / "train" / "000000.mp4").stat().st_mtime_ns
    assert ensure_builtin_video_dataset(tmp_path) == root
    assert (root / "train" / "000000.mp4").stat().st_mtime_ns == stamp  # cached, not rewritten
    monkeypatch.setattr(syn, "GENERATOR_VERSION", syn.GENERATOR_VERSION + 1)
    assert ensure_builtin_video_dataset(tmp_path) == root
    assert json.loads((root / "VERSION").read_text())["version"] == syn.GENERATOR_VERSION
    assert sorted(p.name for p in tmp_path.iterdir()) == ["builtin_video"]  # no temp dirs left behind
    monkeypatch.setenv("SPATIO_CACHE", str(tmp_path / "env"))
    assert ensure_builtin_video_dataset() == tmp_path / "env" / "builtin_video"


def test_frames_are_intra_coded(small_root):
    """Every frame a keyframe: codec artefacts cannot depend on the motion between frames."""
    import av

    with av.open(str(small_root / "train" / "000000.mp4")) as c:
        keys = [p.is_keyframe for p in c.demux(c.streams.video[0]) if p.size]
    assert len(keys) == syn.NUM_VIDEO_FRAMES and all(keys)
