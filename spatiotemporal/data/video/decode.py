"""Read only the frames a clip needs from an encoded video: decord first, PyAV as the fallback.

``open_video(path)`` returns a :class:`VideoSource` with ``num_frames``, ``fps`` and
``get_frames(indices) -> uint8 (T, H, W, 3)``. Frame ``i`` is the ``i``-th frame in presentation order.
``read_clip(path, choose_indices)`` opens a video, lets the caller pick indices from
``(num_frames, fps)`` and decodes them; with ``backend="auto"`` a file decord cannot read is retried
with PyAV. Every failure (missing, truncated, corrupt, no video stream) raises :class:`VideoDecodeError`.
The decoders' own messages (FFmpeg's ``moov atom not found``, decord's ``ERROR opening``) never reach stderr:
they go to the ``spatiotemporal.data.video`` logger at DEBUG, so a bad file gives one warning line (ours).
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import math
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

try:  # decord has wheels for x86_64 Linux/Windows only
    import decord

    _HAS_DECORD = True
    _DECORD_FREE = getattr(decord.video_reader, "_CAPI_VideoReaderFree", None)
except ImportError:  # pragma: no cover - depends on the platform
    decord = None
    _HAS_DECORD = False
    _DECORD_FREE = None

import av

from ...utils.errors import UserInputError
from .frames import FrameFolderVideo
from .source import VideoDecodeError, VideoSource, check_indices, short_side_size

BACKENDS = ("auto", "decord", "pyav")
logger = logging.getLogger("spatiotemporal.data.video")

av.logging.set_level(None)  # PyAV's default: FFmpeg's log dropped (errors still raise with their reason)
if _HAS_DECORD:
    decord.logging.set_level(decord.logging.QUIET)  # decord's bundled FFmpeg
_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def _native_stderr_to_debug():
    """Send file descriptor 2 to a temp file meanwhile, then log what was written at DEBUG.

    decord's C++ logger prints a line for every file it cannot open and has no switch for it
    (``decord.logging`` sets FFmpeg's level only).
    """
    with _STDERR_LOCK, tempfile.TemporaryFile() as captured:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode(errors="replace").strip()
            if text:
                logger.debug("decoder output: %s", text)


def decord_available() -> bool:
    return _HAS_DECORD


def resolve_backend(backend: str) -> str:
    """``"auto"`` -> ``"decord"`` when importable else ``"pyav"``; validates the name."""
    if backend not in BACKENDS:
        raise UserInputError(f"unknown video backend {backend!r}; expected one of {BACKENDS}")
    if backend == "auto":
        return "decord" if _HAS_DECORD else "pyav"
    if backend == "decord" and not _HAS_DECORD:
        raise UserInputError("data.video.backend=decord, but decord is not installed: pip install decord, or "
                             "use data.video.backend=pyav")
    return backend


def _probe_size(path: Path) -> tuple[int, int]:
    """``(height, width)`` of the first video stream, from the header only."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoDecodeError(path, "no video stream")
            cc = container.streams.video[0].codec_context
            return int(cc.height), int(cc.width)
    except (av.FFmpegError, OSError) as e:
        raise VideoDecodeError(path, f"{type(e).__name__}: {e}") from e


def _decord_message(e: BaseException) -> str:
    """First informative line of a decord error (its messages start with a ``[time] file:line:`` tag)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    text = lines[0] if lines else type(e).__name__
    if text.startswith("[") and "] " in text:
        text = text.split("] ", 1)[1]
    return f"decord: {text}"


class DecordVideo(VideoSource):
    """decord ``VideoReader``; ``get_batch`` seeks to the needed keyframes and decodes only those GOPs."""

    backend = "decord"

    def __init__(self, path: str | Path, short_side: int | None = None, num_threads: int = 1):
        if not _HAS_DECORD:
            raise ImportError("decord is not installed")
        self.path = Path(path)
        if not self.path.is_file():
            raise VideoDecodeError(self.path, "file not found")
        height = width = -1
        if short_side is not None:
            height, width = short_side_size(*_probe_size(self.path), short_side)
        error = None
        try:
            with _native_stderr_to_debug():
                self._reader = decord.VideoReader(
                    str(self.path), ctx=decord.cpu(0), width=width, height=height, num_threads=num_threads
                )
            self.num_frames = len(self._reader)
            self.fps = float(self._reader.get_avg_fps())
        except (decord.DECORDError, RuntimeError, AssertionError) as e:
            error = _decord_message(e)
        if error is not None:  # raised outside the except block: no traceback keeps a reader alive
            self.close()
            raise VideoDecodeError(self.path, error)
        if self.num_frames <= 0:
            self.close()
            raise VideoDecodeError(self.path, "no frames")
        if not math.isfinite(self.fps) or self.fps <= 0:
            self.fps = 30.0

    def get_frames(self, indices: Sequence[int]) -> torch.Tensor:
        idx = check_indices(self.path, indices, self.num_frames)
        unique, inverse = np.unique(idx, return_inverse=True)
        error = None
        try:
            # explicit bridge: importing pytorchvideo switches decord's global bridge to torch
            with decord.bridge.use_torch():
                batch = self._reader.get_batch(unique.tolist())
        except (decord.DECORDError, RuntimeError, AssertionError) as e:
            error = _decord_message(e)
        if error is not None:
            raise VideoDecodeError(self.path, error)
        return batch if np.array_equal(unique, idx) else batch[torch.from_numpy(inverse.reshape(-1))]

    def close(self) -> None:
        """Free the native reader now (decord has no close()).

        A reader left to the garbage collector can be collected in a forked DataLoader worker, where
        freeing it aborts the process (its decoder threads belong to the parent).
        """
        reader = self.__dict__.pop("_reader", None)
        handle = getattr(reader, "_handle", None)
        if handle is not None and _DECORD_FREE is not None:
            reader._handle = None
            _DECORD_FREE(handle)


class PyAVVideo(VideoSource):
    """PyAV: seek to the keyframe at or before the first needed frame, decode forward, keep the needed ones.

    Opening demuxes the stream once (packets only, no decoding) to index every frame's pts and the
    keyframes; decoding re-seeks when the next needed frame lies past a later keyframe. A file with fewer
    packets than its header announces is reported as truncated.
    """

    backend = "pyav"

    def __init__(self, path: str | Path, short_side: int | None = None, thread_type: str | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise VideoDecodeError(self.path, "file not found")
        try:
            self._container = av.open(str(self.path))
            if not self._container.streams.video:
                raise VideoDecodeError(self.path, "no video stream")
            self._stream = stream = self._container.streams.video[0]
            if thread_type is not None:
                stream.thread_type = thread_type
            pts: list[int] = []
            keys: list[int] = []
            for packet in self._container.demux(stream):
                t = packet.pts if packet.pts is not None else packet.dts
                if t is None or packet.size == 0:
                    continue
                pts.append(int(t))
                if packet.is_keyframe:
                    keys.append(int(t))
        except VideoDecodeError:
            self.close()
            raise
        except (av.FFmpegError, OSError, ValueError) as e:
            self.close()
            raise VideoDecodeError(self.path, f"pyav: {type(e).__name__}: {e}") from e
        declared = int(stream.frames or 0)
        if not pts:
            self.close()
            raise VideoDecodeError(self.path, "no frames")
        if declared and len(pts) < declared:
            self.close()
            raise VideoDecodeError(self.path, f"truncated: header declares {declared} frames, found {len(pts)}")
        self._pts = sorted(pts)
        self._pts_index = {p: i for i, p in enumerate(self._pts)}
        self._key_frames = sorted(self._pts_index[k] for k in set(keys)) or [0]
        self.num_frames = len(self._pts)
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else 30.0
        self._size = None
        if short_side is not None:
            self._size = short_side_size(stream.codec_context.height, stream.codec_context.width, short_side)

    def _keyframe_before(self, index: int) -> int:
        return self._key_frames[max(bisect.bisect_right(self._key_frames, index) - 1, 0)]

    def _frame_index(self, pts: int) -> int:
        i = self._pts_index.get(pts)
        if i is None:  # decoder-reordered or rescaled pts: nearest indexed one
            i = min(max(bisect.bisect_left(self._pts, pts), 0), self.num_frames - 1)
        return i

    def _to_array(self, frame: av.VideoFrame) -> np.ndarray:
        if self._size is None:
            return frame.to_ndarray(format="rgb24")
        h, w = self._size
        return frame.reformat(width=w, height=h, format="rgb24", interpolation="BILINEAR").to_ndarray()

    def _decode(self, needed: list[int], from_start: bool) -> dict[int, np.ndarray]:
        out: dict[int, np.ndarray] = {}
        pos = 0
        while pos < len(needed):
            target = 0 if from_start else self._keyframe_before(needed[pos])
            self._container.seek(self._pts[target], stream=self._stream, backward=True, any_frame=False)
            reseek = False
            for frame in self._container.decode(self._stream):
                if frame.pts is None:
                    continue
                i = self._frame_index(frame.pts)
                if i > needed[pos]:
                    if from_start:
                        raise VideoDecodeError(self.path, f"frame {needed[pos]} missing from the stream")
                    return out  # the seek overshot; caller retries from the start
                if i == needed[pos]:
                    out[i] = self._to_array(frame)
                    pos += 1
                    if pos == len(needed):
                        return out
                    if not from_start and self._keyframe_before(needed[pos]) > i:
                        reseek = True
                        break
            if not reseek:
                break
        if pos < len(needed):
            if not from_start:
                return out
            raise VideoDecodeError(self.path, f"stream ended before frame {needed[pos]}")
        return out

    def get_frames(self, indices: Sequence[int]) -> torch.Tensor:
        idx = check_indices(self.path, indices, self.num_frames)
        needed = sorted(set(idx.tolist()))
        try:
            out = self._decode(needed, from_start=False)
            if len(out) < len(needed):
                out.update(self._decode([i for i in needed if i not in out], from_start=True))
        except VideoDecodeError:
            raise
        except (av.FFmpegError, OSError, ValueError) as e:
            raise VideoDecodeError(self.path, f"pyav: {type(e).__name__}: {e}") from e
        return torch.from_numpy(np.stack([out[i] for i in idx.tolist()]))

    def close(self) -> None:
        container = self.__dict__.pop("_container", None)
        if container is not None:
            container.close()


def open_video(
    path: str | Path, backend: str = "auto", short_side: int | None = None, num_threads: int = 1
) -> VideoSource:
    """Open ``path`` with ``backend`` (``"decord" | "pyav" | "auto"``); a folder is read as a frame folder.

    ``short_side`` resizes at decode time (bilinear, aspect kept, long side floored);
    ``num_threads`` is decord's decoder thread count (0 = all cores; PyAV decodes single-threaded).
    """
    if Path(path).is_dir():  # a frame folder (one image per frame)
        return FrameFolderVideo(path, short_side=short_side)
    name = resolve_backend(backend)
    if name == "decord":
        return DecordVideo(path, short_side=short_side, num_threads=num_threads)
    return PyAVVideo(path, short_side=short_side)


@dataclass
class DecodedClip:
    """Decoded frames ``(T, H, W, 3)`` uint8, the frame indices, and the video's length / fps."""

    frames: torch.Tensor
    indices: np.ndarray
    num_frames: int
    fps: float
    backend: str


def read_clip(
    path: str | Path,
    choose_indices: Callable[[int, float], np.ndarray],
    backend: str = "auto",
    short_side: int | None = None,
    num_threads: int = 1,
) -> DecodedClip:
    """Open ``path``, call ``choose_indices(num_frames, fps)`` (any shape), decode those frames.

    ``frames`` is ``(indices.size, H, W, 3)`` in the flattened order of ``indices``. With ``backend="auto"``
    a decord failure is retried with PyAV (``choose_indices`` is called once per distinct
    ``(num_frames, fps)``, so a random choice is not redrawn). Raises :class:`VideoDecodeError`.
    """
    if Path(path).is_dir():
        names = ["frames"]
    else:
        names = ["decord", "pyav"] if backend == "auto" and _HAS_DECORD else [resolve_backend(backend)]
    cache: dict[tuple[int, float], np.ndarray] = {}
    reasons: list[str] = []  # strings only: exceptions would keep tracebacks (and readers) alive
    for name in names:
        if not Path(path).exists():
            reasons.append("file not found")
            break
        try:
            with open_video(path, name, short_side=short_side, num_threads=num_threads) as video:
                key = (video.num_frames, round(video.fps, 3))
                if key not in cache:
                    cache[key] = np.asarray(choose_indices(video.num_frames, video.fps), dtype=np.int64)
                indices = cache[key]
                frames = video.get_frames(indices.reshape(-1))
                clip = DecodedClip(frames, indices, video.num_frames, video.fps, name)
        except VideoDecodeError as e:
            reasons.append(e.reason)
            continue
        if reasons:
            _log_fallback(path, reasons[0])
        return clip
    raise VideoDecodeError(path, "; ".join(reasons))


_fallback_logged = False


def _log_fallback(path: str | Path, reason: str) -> None:
    """Say (once per process at WARNING, then at DEBUG) that decord failed where PyAV succeeded."""
    global _fallback_logged
    level = logging.DEBUG if _fallback_logged else logging.WARNING
    _fallback_logged = True
    logger.log(level, "decord could not read %s (%s); decoded it with PyAV (slower)", path, reason)
