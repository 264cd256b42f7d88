"""Decoding real mp4 files (written with PyAV) with decord and PyAV, clip sampling and transforms."""

import math
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spatiotemporal.data.video import (
    VideoDecodeError,
    clip_indices,
    clip_span,
    multi_crop_transform,
    open_video,
    read_clip,
    resize_short_side,
    spatial_crop_offsets,
    train_clip_indices,
    train_clip_transform,
    uniform_clip_indices,
)

BITS = 7  # frame index coded in 7 black/white blocks along the top half


def coded_frames(n: int, h: int = 48, w: int = 112) -> np.ndarray:
    """uint8 (n, h, w, 3): frame i shows i in binary (block b white iff bit b set); bottom half a gradient."""
    frames = np.zeros((n, h, w, 3), np.uint8)
    bw = w // BITS
    for i in range(n):
        for b in range(BITS):
            frames[i, : h // 2, b * bw : (b + 1) * bw] = 255 if (i >> b) & 1 else 0
        frames[i, h // 2 :] = np.linspace(0, 255, w, dtype=np.uint8)[None, :, None]
    return frames


def read_code(frame: torch.Tensor) -> int:
    """Inverse of :func:`coded_frames` for one (H, W, 3) frame, robust to codecs and resizing."""
    h, w = frame.shape[:2]
    bw = w / BITS
    value = 0
    for b in range(BITS):
        block = frame[h // 8 : 3 * h // 8, int(b * bw + bw / 4) : int(b * bw + 3 * bw / 4)].float().mean()
        value |= int(block > 127) << b
    return value


def write_video(path: Path, frames: np.ndarray, codec: str = "libx264", gop: int | None = None, fps: int = 30):
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps)
        s.height, s.width, s.pix_fmt = frames.shape[1], frames.shape[2], "yuv420p"
        if gop:
            s.codec_context.gop_size = gop
        if codec == "mpeg4":
            s.codec_context.bit_rate = 2_000_000
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("videos")
    frames = coded_frames(100)
    return {
        # libx264 defaults: B-frames, long GOP (+ scenecut keyframes); mpeg4 with a short GOP of 12
        "h264": write_video(d / "h264.mp4", frames),
        "mpeg4": write_video(d / "mpeg4.mp4", frames, codec="mpeg4", gop=12),
        "h264_gop10": write_video(d / "gop10.mp4", frames, gop=10),
    }


@pytest.mark.parametrize("backend", ["decord", "pyav"])
@pytest.mark.parametrize("kind", ["h264", "mpeg4", "h264_gop10"])
def test_backends_return_exactly_the_requested_frames(videos, backend, kind):
    indices = [57, 3, 99, 0, 57, 31, 64, 12, 88, 88]
    with open_video(videos[kind], backend) as v:
        assert v.num_frames == 100 and v.fps == pytest.approx(30.0)
        frames = v.get_frames(indices)
    assert frames.dtype == torch.uint8 and frames.shape == (len(indices), 48, 112, 3)
    assert [read_code(f) for f in frames] == indices
    for order in ([90, 10, 50], [4, 5, 6]):  # unsorted without repeats, and sorted
        with open_video(videos[kind], backend) as v:
            assert [read_code(f) for f in v.get_frames(order)] == order


def test_decord_and_pyav_agree_pixelwise(videos):
    idx = [5, 40, 41, 97]
    with open_video(videos["h264"], "decord") as a, open_video(videos["h264"], "pyav") as b:
        fa, fb = a.get_frames(idx).float(), b.get_frames(idx).float()
    assert (fa - fb).abs().mean() < 2.0  # same bitstream; only YUV->RGB conversion details may differ


@pytest.mark.parametrize("backend", ["decord", "pyav"])
def test_decode_time_short_side_resize(videos, backend):
    with open_video(videos["mpeg4"], backend, short_side=24) as v:
        frames = v.get_frames([10, 70])
    assert frames.shape == (2, 24, 56, 3)  # 48x112 -> short side 24, long side floor(112/48*24)
    assert [read_code(f) for f in frames] == [10, 70]


def _corrupt_files(src: Path, d: Path) -> dict[str, Path]:
    data = src.read_bytes()
    files = {
        "truncated": d / "truncated.mp4",
        "garbage": d / "garbage.mp4",
        "empty": d / "empty.mp4",
        "missing": d / "missing.mp4",
    }
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["garbage"].write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    files["empty"].write_bytes(b"")
    return files


def test_truncated_faststart_file_fails_in_both_backends(tmp_path):
    """moov atom first: the header opens fine, the missing tail must still be an error."""
    frames = np.random.default_rng(1).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    full = tmp_path / "fs.mp4"
    with av.open(str(full), "w", options={"movflags": "faststart"}) as c:
        s = c.add_stream("libx264", rate=30)
        s.height = s.width = 32
        s.pix_fmt = "yuv420p"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    data = full.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoDecodeError, match="truncated"):
        open_video(cut, "pyav")
    with pytest.raises(VideoDecodeError) as info:
        with open_video(cut, "decord") as v:
            v.get_frames([0, 39])
    assert info.value.path == str(cut)


@pytest.mark.parametrize("backend", ["decord", "pyav", "auto"])
def test_broken_files_raise_video_decode_error_with_path(videos, tmp_path, backend):
    for name, path in _corrupt_files(videos["h264"], tmp_path).items():
        with pytest.raises(VideoDecodeError) as info:
            read_clip(path, lambda n, fps: np.arange(4), backend=backend)
        assert info.value.path == str(path), name
        assert str(path) in str(info.value)


def test_auto_falls_back_to_pyav_where_decord_fails(tmp_path, caplog, monkeypatch):
    """decord 0.6 cannot convert some frame widths (e.g. 48 px); "auto" decodes those with PyAV."""
    import spatiotemporal.data.video.decode as decode

    path = write_video(tmp_path / "w48.mp4", coded_frames(12, h=32, w=48 * 2)[:, :, :48])
    with pytest.raises(VideoDecodeError, match="decord"):
        read_clip(path, lambda n, fps: np.arange(3), backend="decord")
    monkeypatch.setattr(decode, "_fallback_logged", False)
    with caplog.at_level("WARNING", logger="spatiotemporal.data.video"):
        clip = read_clip(path, lambda n, fps: np.array([2, 7]), backend="auto")
    assert clip.backend == "pyav" and clip.frames.shape == (2, 32, 48, 3)
    assert any("decoded it with PyAV" in r.getMessage() for r in caplog.records)


def test_read_clip_calls_chooser_with_length_and_fps(videos):
    seen = []

    def choose(n, fps):
        seen.append((n, fps))
        return np.array([[1, 2], [50, 99]])

    clip = read_clip(videos["h264_gop10"], choose, backend="auto")
    assert seen == [(100, 30.0)] and clip.indices.shape == (2, 2)
    assert [read_code(f) for f in clip.frames] == [1, 2, 50, 99]


# --- temporal sampling ---------------------------------------------------------------------------


def test_clip_indices_follow_the_official_linspace():
    assert clip_span(8, 32, fps=30.0) == 256
    assert clip_span(8, 32, fps=60.0, target_fps=30) == 512  # stride 32 at 30 fps = 64 native frames
    idx = clip_indices(10.7, 256, 8, video_frames=300)
    expected = np.linspace(10.7, 265.7, 8).astype(np.int64)
    assert idx.tolist() == expected.tolist() and idx.dtype == np.int64


def test_train_indices_random_start_inside_the_video():
    rng = np.random.default_rng(0)
    starts = []
    for _ in range(200):
        idx = train_clip_indices(300, 30.0, 8, 32, rng)
        assert len(idx) == 8 and idx.min() >= 0 and idx.max() <= 299
        assert np.all(np.diff(idx) >= 36)  # spacing 255/7 = 36.4, truncated
        starts.append(idx[0])
    assert min(starts) < 10 and max(starts) > 34  # covers [0, 300 - 256]


def test_short_video_is_clamped_not_an_error():
    idx = train_clip_indices(50, 30.0, 8, 32, np.random.default_rng(0))
    assert idx[0] == 0 and idx[-1] == 49 and idx.tolist() == sorted(idx.tolist())
    assert (idx == 49).sum() >= 6  # span 256 > 50 frames: the tail repeats the last frame
    multi = uniform_clip_indices(50, 30.0, 8, 32, num_clips=3)
    assert multi.shape == (3, 8) and (multi == multi[0]).all()


def test_uniform_clip_starts():
    idx = uniform_clip_indices(400, 30.0, 4, 10, num_clips=4)  # span 40, delta 360
    assert idx[:, 0].tolist() == [0, 90, 180, 270]
    assert idx[0].tolist() == np.linspace(0, 39, 4).astype(int).tolist()
    assert uniform_clip_indices(400, 30.0, 4, 10, num_clips=1)[0, 0] == 0  # official: first clip at 0


def test_short_video_end_to_end(videos, tmp_path):
    path = write_video(tmp_path / "short.mp4", coded_frames(20))
    clip = read_clip(path, lambda n, fps: train_clip_indices(n, fps, 8, 32, np.random.default_rng(3)))
    assert clip.num_frames == 20 and [read_code(f) for f in clip.frames] == clip.indices.tolist()
    assert clip.indices[-1] == 19


# --- spatial crops and transforms ----------------------------------------------------------------


def test_spatial_crop_offsets():
    assert spatial_crop_offsets(224, 300, 224, 3) == [(0, 0), (0, 38), (0, 76)]
    assert spatial_crop_offsets(224, 301, 224, 3) == [(0, 0), (0, math.ceil(77 / 2)), (0, 77)]
    assert spatial_crop_offsets(300, 224, 224, 3) == [(0, 0), (38, 0), (76, 0)]  # portrait: top/centre/bottom
    assert spatial_crop_offsets(224, 224, 224, 3) == [(0, 0)] * 3
    assert spatial_crop_offsets(230, 301, 224, 1) == [(3, 39)]  # one crop: centre
    with pytest.raises(ValueError, match="larger than frame"):
        spatial_crop_offsets(100, 300, 224, 3)


def test_multi_crop_transform_matches_resize_then_slices():
    frames = torch.randint(0, 256, (4, 60, 90, 3), dtype=torch.uint8)
    views = multi_crop_transform(frames, 40, 3, mean=(0.45,) * 3, std=(0.225,) * 3)
    assert views.shape == (3, 3, 4, 40, 40)
    ref = F.interpolate(frames.permute(0, 3, 1, 2).float() / 255, size=(40, 60), mode="bilinear", align_corners=False)
    ref = ((ref - 0.45) / 0.225).permute(1, 0, 2, 3)  # (C, T, H, W)
    for v, x in enumerate([0, 10, 20]):
        torch.testing.assert_close(views[v], ref[..., x : x + 40], atol=1e-5, rtol=0)


def test_train_transform_official_order_equivalence_and_draws():
    frames = torch.randint(0, 256, (3, 40, 50, 3), dtype=torch.uint8)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)
    out = train_clip_transform(frames, np.random.default_rng(7), (44, 52), 32, mean, std, random_flip=True)
    assert out.shape == (3, 3, 32, 32) and out.dtype == torch.float32 and out.is_contiguous()
    # replay the draws with the official order: normalise first, then resize, crop, flip
    rng = np.random.default_rng(7)
    size = int(round(rng.uniform(44, 52)))
    x = (frames.permute(0, 3, 1, 2).float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(
        1, 3, 1, 1
    )
    x = F.interpolate(x, size=(size, int(math.floor(50 / 40 * size))), mode="bilinear", align_corners=False)
    y0, x0 = int(rng.integers(0, x.shape[-2] - 31)), int(rng.integers(0, x.shape[-1] - 31))
    x = x[..., y0 : y0 + 32, x0 : x0 + 32]
    if rng.uniform() < 0.5:
        x = x.flip(-1)
    torch.testing.assert_close(out, x.permute(1, 0, 2, 3), atol=1e-5, rtol=0)


def test_resize_short_side_noop_and_portrait():
    x = torch.rand(2, 3, 32, 48)
    assert resize_short_side(x, 32) is x
    assert resize_short_side(torch.rand(2, 3, 50, 30), 20).shape == (2, 3, 33, 20)
