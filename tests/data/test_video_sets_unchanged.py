"""The two built-in video sets keep their content: file names, split CSVs, classes.txt and the frames of every video.

Runs and results cached elsewhere were made with these sets, so a change to the writer must not change them. The
mp4 bytes depend on the encoder build (libx264 version), so the digest takes the uint8 frames handed to
``write_mp4`` instead of the files' bytes.
"""

import hashlib
from pathlib import Path

import pytest

from spatiotemporal.data.video import generate_builtin_video_dataset, generate_motion_video_dataset
from spatiotemporal.data.video import synthetic as syn

SIZES = {"train": 5, "val": 2, "test": 1}
# Computed on main at 5fd530f (before write_video_set), with the same spy patched onto both ``synthetic.write_mp4``
# and ``motion.write_mp4``: every file's relative path, then its bytes (hex) for the text files or
# ``sha256(frames) + shape + dtype`` for an mp4, in sorted path order, into one sha256.
DIGESTS = {
    (generate_builtin_video_dataset, 0): "2dafb7fa2a33ac581be87edac70189e1cdc765c2432bc44c153bbd2a46fd763e",
    (generate_builtin_video_dataset, 3): "8d22e8f1054eaf9b5d2912e7514ad9f8c388fe3d45c14ea1094476337d3a440b",
    (generate_motion_video_dataset, 0): "8f6dca7da8b22be874c9b385dfef53322d9bf4bd1662fe25d0e92f39fd80a2d7",
    (generate_motion_video_dataset, 3): "eb402e9edb420081da89c9f42fd3d4ad8a4de63834ddeec4c1123ff1eab80645",
}


@pytest.mark.parametrize("generate, seed", list(DIGESTS), ids=lambda v: getattr(v, "__name__", str(v)))
def test_a_small_set_has_the_content_it_had_on_main(generate, seed, tmp_path, monkeypatch):
    frames_of = {}
    real = syn.write_mp4

    def spy(path, frames, *args, **kwargs):
        frames_of[Path(path)] = hashlib.sha256(frames.tobytes()).hexdigest() + str(frames.shape) + str(frames.dtype)
        return real(path, frames, *args, **kwargs)

    monkeypatch.setattr(syn, "write_mp4", spy)
    root = generate(tmp_path / "set", SIZES, seed)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    assert sorted(frames_of) == [p for p in files if p.suffix == ".mp4"]  # every video went through the encoder
    assert all(p.stat().st_size > 0 for p in frames_of)
    digest = hashlib.sha256()
    for p in files:
        digest.update(p.relative_to(root).as_posix().encode())
        digest.update((frames_of[p] if p.suffix == ".mp4" else p.read_bytes().hex()).encode())
    assert digest.hexdigest() == DIGESTS[(generate, seed)]
