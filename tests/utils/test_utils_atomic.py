"""Atomic writes: umask permissions, one clear error on an unwritable folder, nothing left behind; the
generate-once cache folder."""

from __future__ import annotations

import errno
import os
import threading

import pytest
import torch

from spatiotemporal.models import create_model, load_pretrained, save_pretrained
from spatiotemporal.utils import atomic
from spatiotemporal.utils.atomic import atomic_copy, atomic_torch_save, atomic_write_text, ensure_generated


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_files_get_the_umask_permissions(tmp_path, umask_022):
    atomic_write_text(tmp_path / "a.txt", "hello")
    atomic_torch_save({"x": torch.arange(3)}, tmp_path / "b.pt")
    atomic_copy(tmp_path / "b.pt", tmp_path / "sub" / "c.pt")
    for name in ("a.txt", "b.pt", "sub/c.pt"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name
    assert (tmp_path / "a.txt").read_text() == "hello"
    assert torch.equal(torch.load(tmp_path / "sub" / "c.pt", weights_only=True)["x"], torch.arange(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.pt", "sub"]  # no temp files


def test_save_pretrained_outputs_are_readable_by_others(tmp_path, umask_022):
    model = create_model("vit_tiny_builtin")
    path = save_pretrained(model, tmp_path / "m.safetensors")
    for p in (path, path.with_suffix(".json")):
        assert p.stat().st_mode & 0o777 == 0o644, p  # mkstemp used to give 0600
    again = load_pretrained(path)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_unwritable_folder_gives_one_error_naming_the_target(tmp_path, monkeypatch):
    """A read-only folder: creating the temp file fails and removing it fails too (EROFS). The user gets one
    PermissionError / OSError naming the target path, with no chained clean-up traceback."""
    target = tmp_path / "out" / "model.safetensors"
    target.parent.mkdir()

    def failing(code, text):
        def call(path, *args, **kwargs):
            raise OSError(code, text, str(path))
        return call

    monkeypatch.setattr(atomic.os, "open", failing(errno.EACCES, "Permission denied"))
    monkeypatch.setattr(atomic.os, "unlink", failing(errno.EROFS, "Read-only file system"))
    with pytest.raises(PermissionError) as info:
        atomic_write_text(target, "x")
    e = info.value
    assert e.filename == str(target) and "cannot write (Permission denied)" in str(e)
    assert e.__cause__ is None and e.__suppress_context__  # printed without "During handling of ..."
    monkeypatch.setattr(atomic.os, "open", failing(errno.EROFS, "Read-only file system"))
    with pytest.raises(OSError, match="Read-only file system") as info:
        atomic_write_text(target, "x")
    assert info.value.errno == errno.EROFS and info.value.filename == str(target)
    assert list(target.parent.iterdir()) == []


def test_failed_write_removes_the_temp_file_even_if_removal_fails_quietly(tmp_path, monkeypatch):
    (tmp_path / "f.pt").write_bytes(b"good")

    def bad_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(atomic.torch, "save", bad_save)
    with pytest.raises(OSError, match="disk full") as info:
        atomic_torch_save({}, tmp_path / "f.pt")
    assert info.value.__context__ is None  # the clean-up raised nothing on top
    assert (tmp_path / "f.pt").read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["f.pt"]


def _count_and_write(calls):
    def generate(folder):
        calls.append(folder)
        (folder / "data.txt").write_text(f"call {len(calls)}")
    return generate


def test_ensure_generated_once_then_cached_and_regenerated_on_a_new_marker(tmp_path, umask_022):
    calls: list = []
    root = tmp_path / "cache" / "builtin_x"
    assert ensure_generated(root, "v1", _count_and_write(calls)) == root
    assert (root / "data.txt").read_text() == "call 1" and (root / "VERSION").read_text() == "v1"
    assert root.stat().st_mode & 0o777 == 0o755  # not mkdtemp's 0700
    assert ensure_generated(root, "v1", _count_and_write(calls)) == root and len(calls) == 1
    assert ensure_generated(root, "v2", _count_and_write(calls)) == root and len(calls) == 2
    assert (root / "data.txt").read_text() == "call 2"
    assert sorted(p.name for p in root.parent.iterdir()) == ["builtin_x"]  # no temp or stale folders


def test_ensure_generated_interrupted_leaves_nothing(tmp_path):
    root = tmp_path / "builtin_x"

    def crash(folder):
        (folder / "half.txt").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ensure_generated(root, "v1", crash)
    assert list(tmp_path.iterdir()) == []


def test_ensure_generated_concurrent_callers_share_one_copy(tmp_path):
    root = tmp_path / "builtin_x"
    barrier = threading.Barrier(3)
    results, errors = [], []

    def generate(folder):
        barrier.wait(timeout=10)  # all three generate at the same time
        (folder / "data.txt").write_text("same")

    def call():
        try:
            results.append(ensure_generated(root, "v1", generate))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and results == [root] * 3
    assert (root / "data.txt").read_text() == "same"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["builtin_x"]
