"""The built-in motion set: balanced mp4 files read by the real loader; within a pair the clean frames are the same
in reverse order; only pixels near the disk change over time (no global cue)."""

from pathlib import Path

import numpy as np
import pytest

from spatiotemporal.data.labels_csv import read_labels_csv
from spatiotemporal.data.video import VideoClipDataset, builtin_video_config, generate_motion_video_dataset, motion


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return generate_motion_video_dataset(tmp_path_factory.mktemp("motion"), {"train": 8, "val": 4, "test": 4})


def test_files_balance_and_loader(root):
    names = (root / "classes.txt").read_text().split()
    assert names == ["up", "down", "grow", "shrink"]
    samples, _ = read_labels_csv(root / "train.csv", class_names=names)
    assert np.bincount([label for _, label in samples]).tolist() == [2, 2, 2, 2]
    ds = VideoClipDataset(root, "train", builtin_video_config())
    item = ds[0]
    assert tuple(item["video"].shape) == (3, 8, 32, 32) and ds.class_names == names


@pytest.mark.parametrize("pair", [(0, 1), (2, 3)])
def test_a_pair_shows_the_same_frames_in_reverse_order(pair):
    a, b = (motion.render_frames(label, np.random.default_rng(5), noise=0.0) for label in pair)
    assert np.array_equal(a[::-1], b)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("label", range(4))
def test_only_pixels_near_the_disk_change(label):
    """Without noise, every pixel farther than 7 px from any position of the disk is the same in every frame."""
    frames = motion.render_frames(label, np.random.default_rng(11), noise=0.0).astype(int)
    changed = (frames != frames[:1]).any(axis=(0, 3))  # (H, W): pixels that change over time
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 0
    span = max(ys.max() - ys.min(), xs.max() - xs.min())
    assert span <= (2 * 6 + 2 if label >= 2 else motion.STEP * (motion.STATES - 1) + 2 * motion.RADIUS[1] + 2)
