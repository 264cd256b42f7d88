"""VideoClipDataset + build_video_loader on real mp4 files: views, determinism, skipping bad videos."""

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from spatiotemporal.data.video import (
    VideoClipDataset,
    VideoDataConfig,
    build_video_loader,
    collate_videos,
    multi_crop_transform,
    read_clip,
    uniform_clip_indices,
)
from spatiotemporal.data.video.synthetic import write_mp4

CFG = VideoDataConfig(
    num_frames=4,
    sampling_rate=3,
    train_jitter_scales=(28, 36),
    crop_size=24,
    test_num_clips=2,
    test_num_crops=3,
)


def write_video(path: Path, frames: np.ndarray, fps: int = 25) -> Path:
    write_mp4(path, frames, fps=fps, intra_only=False)  # PyAV, libx264 with its default GOP
    return path


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """6 good videos (landscape 64x48, 30-40 frames) + classes.txt + CSVs; val/test with bad entries."""
    root = tmp_path_factory.mktemp("kinetics")
    (root / "videos").mkdir()
    rng = np.random.default_rng(0)
    lines = []
    for i in range(6):
        n = 30 + 2 * i
        base = rng.integers(0, 256, (1, 48, 64, 3))
        frames = np.clip(base + np.arange(n)[:, None, None, None] * 3, 0, 255).astype(np.uint8)
        write_video(root / "videos" / f"v{i}.mp4", frames)
        lines.append(f"videos/v{i}.mp4 {['cat', 'dog', 'eel'][i % 3]}")
    (root / "classes.txt").write_text("cat\ndog\neel\n")
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    good = (root / "videos" / "v0.mp4").read_bytes()
    (root / "videos" / "truncated.mp4").write_bytes(good[: len(good) // 3])
    (root / "videos" / "garbage.mp4").write_bytes(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    bad = ["videos/truncated.mp4 cat", "videos/garbage.mp4 dog", "videos/missing.mp4 eel"]
    (root / "val.csv").write_text("\n".join(lines[:3] + bad[:2] + lines[3:] + bad[2:]) + "\n")
    (root / "test.csv").write_text("\n".join(lines[:2]) + "\n")
    return root


def test_train_items_and_class_file(root):
    ds = VideoClipDataset(root, "train", CFG, seed=1)
    assert len(ds) == 6 and ds.class_names == ["cat", "dog", "eel"] and ds.num_classes == 3
    item = ds[4]
    assert item["video"].shape == (3, 4, 24, 24) and item["video"].dtype == torch.float32
    assert item["label"] == 1 and item["index"] == 4
    # normalised with mean 0.45 / std 0.225: values inside [(0 - .45) / .225, (1 - .45) / .225]
    assert item["video"].min() >= -2.0 - 1e-5 and item["video"].max() <= 2.45 + 1e-5


def test_multi_view_shapes_and_view_order(root):
    ds = VideoClipDataset(root, "test", CFG)
    assert ds.multi_view
    item = ds[1]
    assert item["video"].shape == (6, 3, 4, 24, 24)  # V = 2 clips x 3 crops
    # reference: decode both clips, 3 crops each; view v = clip * 3 + crop
    clip = read_clip(ds.samples[1][0], lambda n, fps: uniform_clip_indices(n, fps, 4, 3, 2))
    for k in range(2):
        ref = multi_crop_transform(clip.frames[4 * k : 4 * k + 4], 24, 3, CFG.mean, CFG.std)
        torch.testing.assert_close(item["video"][3 * k : 3 * k + 3], ref)
    assert not torch.equal(item["video"][0], item["video"][3])  # clip 2 starts later
    assert clip.indices[1, 0] > clip.indices[0, 0]
    single = VideoClipDataset(root, "val", CFG, multi_view=True)[0]["video"]
    assert single.shape == (6, 3, 4, 24, 24)


def test_same_seed_epoch_index_gives_identical_clip(root):
    a = VideoClipDataset(root, "train", CFG, seed=3)
    b = VideoClipDataset(root, "train", CFG, seed=3)
    torch.testing.assert_close(a[2]["video"], b[2]["video"], rtol=0, atol=0)
    first = a[2]["video"]
    a.set_epoch(1)
    assert a.epoch == 1 and not torch.equal(a[2]["video"], first)
    a.set_epoch(0)
    torch.testing.assert_close(a[2]["video"], first, rtol=0, atol=0)
    assert not torch.equal(VideoClipDataset(root, "train", CFG, seed=4)[2]["video"], first)


def test_loader_workers_match_direct_access_and_follow_set_epoch(root):
    ds = VideoClipDataset(root, "train", CFG, seed=5)
    loader = build_video_loader(ds, batch_size=4, shuffle=False, num_workers=2)
    assert loader.persistent_workers and loader.collate_fn is collate_videos
    for epoch in range(2):
        ds.set_epoch(epoch)  # must reach the persistent workers
        videos = torch.cat([b["video"] for b in loader])
        indices = torch.cat([b["index"] for b in loader])
        assert indices.tolist() == list(range(6))
        direct = torch.stack([ds[i]["video"] for i in range(6)])
        torch.testing.assert_close(videos, direct, rtol=0, atol=0)
        if epoch == 0:
            epoch0 = videos
    assert not torch.equal(epoch0, videos)


def test_bad_videos_are_skipped_counted_and_reported_through_workers(root):
    ds = VideoClipDataset(root, "val", CFG, seed=0)
    loader = build_video_loader(ds, batch_size=3, shuffle=False, num_workers=2)
    seen, skipped, batches = [], [], 0
    for batch in loader:
        batches += 1
        assert batch["video"].shape[0] == batch["label"].shape[0] == batch["index"].shape[0]
        seen += batch["index"].tolist()
        skipped += batch["skipped"]
    assert batches == 3  # the epoch completes
    assert sorted(seen) == [0, 1, 2, 5, 6, 7]
    assert sorted(Path(p).name for p in skipped) == ["garbage.mp4", "missing.mp4", "truncated.mp4"]


def test_skip_is_logged_and_counted_in_process(root, caplog):
    ds = VideoClipDataset(root, "val", CFG)
    with caplog.at_level(logging.WARNING, logger="spatiotemporal.data.video"):
        item = ds[4]
    reason = item.pop("reason")
    assert item == {"skipped": str(root / "videos" / "garbage.mp4"), "index": 4}
    assert "pyav: InvalidDataError" in reason and reason in caplog.records[0].getMessage()  # the logged reason
    assert ds.num_skipped == 1
    assert any("garbage.mp4" in r.getMessage() for r in caplog.records)


def test_a_bad_video_is_decoded_and_logged_once_but_skipped_every_epoch(root, caplog, monkeypatch):
    import spatiotemporal.data.video.dataset as video_dataset

    opened = []
    real_read_clip = video_dataset.read_clip

    def read_clip(path, *args, **kwargs):
        opened.append(path)
        return real_read_clip(path, *args, **kwargs)

    monkeypatch.setattr(video_dataset, "read_clip", read_clip)
    ds = VideoClipDataset(root, "val", CFG)
    with caplog.at_level(logging.WARNING, logger="spatiotemporal.data.video"):
        for epoch in range(3):
            ds.set_epoch(epoch)
            item = ds[4]
            assert {k: item[k] for k in ("skipped", "index")} == {"skipped": str(root / "videos" / "garbage.mp4"),
                                                                  "index": 4}
            assert "pyav: InvalidDataError" in item["reason"]  # every epoch, though decoded only once
            assert "video" in ds[0]
    assert [Path(p).name for p in opened].count("garbage.mp4") == 1 and len(opened) == 4
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        f"skipping unreadable video {root / 'videos' / 'garbage.mp4'}"]
    assert ds.unreadable == [root / "videos" / "garbage.mp4"] and ds.num_skipped == 3


_EPOCHS_SCRIPT = """
import logging, sys
logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
from spatiotemporal.data.video import VideoClipDataset, VideoDataConfig, build_video_loader
cfg = VideoDataConfig(num_frames=4, sampling_rate=3, train_jitter_scales=(28, 36), crop_size=24)
ds = VideoClipDataset(sys.argv[1], "val", cfg)
loader = build_video_loader(ds, batch_size=3, num_workers=2)
for epoch in range(3):
    ds.set_epoch(epoch)
    skipped = sum(len(b["skipped"]) for b in loader)
    print("epoch", epoch, "skipped", skipped, flush=True)
"""


def test_workers_share_what_is_unreadable_and_stderr_holds_one_line_per_bad_file(root):
    """In real processes (DataLoader workers, decord and PyAV writing to fd 2): no decoder output on stderr,
    one warning per bad file over 3 epochs, and every epoch still reports the 3 skipped videos."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", _EPOCHS_SCRIPT, str(root)], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"epoch {e} skipped 3" for e in range(3)]
    lines = proc.stderr.splitlines()
    bad = ["truncated.mp4", "garbage.mp4", "missing.mp4"]
    assert len(lines) == 3, proc.stderr
    assert sorted(next(b for b in bad if b in line) for line in lines) == sorted(bad)
    assert all(line.startswith("spatiotemporal.data.video WARNING skipping unreadable video") for line in lines)


def test_all_skipped_batch_collates(root):
    ds = VideoClipDataset(root, "val", CFG)
    batch = collate_videos([ds[3], ds[4]])
    assert batch["video"].numel() == 0 and batch["label"].numel() == 0 and batch["index"].numel() == 0
    assert [Path(p).name for p in batch["skipped"]] == ["truncated.mp4", "garbage.mp4"]
    first = batch["skip_reasons"]
    assert all(first) and first[0] != first[1], first  # each its own reason, from the decoder
    assert collate_videos([ds[3], ds[4]])["skip_reasons"] == first  # known bad: not decoded again, same reason
    mixed = collate_videos([ds[3], ds[0]])
    assert mixed["video"].shape == (1, 3, 4, 24, 24) and mixed["label"].tolist() == [0]


def test_pyav_backend_end_to_end_and_decode_short_side(root):
    cfg = VideoDataConfig(**{**CFG.to_dict(), "backend": "pyav", "decode_short_side": 28})
    ds = VideoClipDataset(root, "test", cfg)
    assert ds[0]["video"].shape == (6, 3, 4, 24, 24)


def test_config_validation_and_from_dict():
    with pytest.raises(ValueError, match="crop_size"):
        VideoDataConfig(train_jitter_scales=(200, 256), crop_size=224)
    with pytest.raises(ValueError, match="backend"):
        VideoDataConfig(backend="ffmpeg")
    with pytest.raises(ValueError, match=r"unknown VideoDataConfig keys \['frames'\]"):
        VideoDataConfig.from_dict({"frames": 8})
    cfg = VideoDataConfig.from_dict({"train_jitter_scales": [256, 320], "mean": [0.5, 0.5, 0.5]})
    assert cfg.train_jitter_scales == (256, 320) and cfg.num_views == 3 and cfg.eval_crop_size == 224
