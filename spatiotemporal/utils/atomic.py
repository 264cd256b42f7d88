"""Atomic file writes and "generate into the cache once".

Files: temp file in the same folder, fsync, ``os.replace``, fsync of the folder. Folders: generated into a
temp sibling, a version marker written last, then renamed into place. A process killed at any point leaves
the previous content or the new one, never a partial file or folder. Everything is created with the umask's
permissions (unlike ``tempfile.mkstemp`` / ``mkdtemp``, which give 0600 / 0700).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import torch

from .errors import SpatioUserError

__all__ = ["DiskFullError", "atomic_write", "atomic_write_text", "atomic_torch_save", "atomic_copy",
           "ensure_generated", "remove_orphaned_temp_files"]

MARKER_NAME = "VERSION"


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not supported on every filesystem / OS
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _cannot_write(path: Path, e: OSError) -> OSError:
    """One error naming ``path`` (not the temp file); ``OSError(errno, ...)`` keeps the subclass, e.g.
    ``PermissionError`` for EACCES."""
    if e.errno is None:
        return type(e)(f"cannot write {path}: {e}")
    if isinstance(e, FileExistsError):  # from mkdir: a file stands where a folder of the path should be
        return NotADirectoryError(errno.ENOTDIR, f"cannot write ({e.filename} is a file, not a folder)", str(path))
    return OSError(e.errno, f"cannot write ({e.strerror})", str(path))


class DiskFullError(SpatioUserError, OSError):
    """No space left (or the disk quota reached) while writing a file: one line naming the file system and the
    file, then ``note`` (what was kept). ``errno`` is ``ENOSPC`` / ``EDQUOT``, ``filename`` the file."""

    def __init__(self, err: int, filename: str | os.PathLike, note: str = ""):
        what = "disk quota exceeded" if err != errno.ENOSPC else "no space left"
        self.mount = mount_point(Path(filename))
        message = f"{what} on {self.mount} while writing {filename}" + (f"; {note}" if note else "")
        super().__init__(err, message, str(filename))

    def __str__(self) -> str:
        return self.strerror


_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _disk_full_in(e: BaseException) -> OSError | None:
    """The ENOSPC / EDQUOT ``OSError`` in ``e`` or its chain (torch's writer reports a failed write as
    ``RuntimeError("... unexpected pos ...")`` raised while handling it), or None."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, OSError) and e.errno in _FULL:
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def mount_point(path: Path) -> Path:
    """The mount point of the file system ``path`` is on (its nearest existing folder's)."""
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return p


def _temp_sibling(path: Path, kind: str) -> Path:
    """``.{name}.{kind}-{pid}-{8 hex}`` beside ``path`` (the pattern :func:`remove_orphaned_temp_files` knows)."""
    return path.parent / f".{path.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


_TEMP_NAME = re.compile(r"^\..+\.tmp-(?P<pid>\d+)-[0-9a-f]{8}$")


def _pid_alive(pid: int) -> bool:
    if pid <= 0 or pid == os.getpid():
        return True  # 0 would address our process group; our own writes may be in progress
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def remove_orphaned_temp_files(directory: str | os.PathLike) -> list[Path]:
    """Delete the temp files that writers killed mid-way (SIGKILL, OOM) left in ``directory`` (not recursive).

    Only files of the writer's exact pattern whose process no longer exists on this host are removed: a live
    pid (ours included, or a reused pid) keeps its file. Returns the removed paths.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for p in sorted(directory.iterdir()):
        m = _TEMP_NAME.match(p.name)
        if m is None or not p.is_file() or _pid_alive(int(m["pid"])):
            continue
        with contextlib.suppress(FileNotFoundError):  # another process cleaned it first
            p.unlink()
            removed.append(p)
    return removed


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write(fileobj)`` on a temp file next to ``path``, then atomically move it to ``path``.

    A folder that cannot be written (read-only, no permission) raises one ``OSError`` naming ``path``; a full
    disk (``ENOSPC``, ``EDQUOT``, also as the cause of a library's error) one :class:`DiskFullError` naming the
    file system and ``path``; any other error inside ``write`` or the rename removes the temp file and
    propagates unchanged.
    """
    path = Path(path)
    tmp = _temp_sibling(path, "tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as e:
        raise _cannot_write(path, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        full = _disk_full_in(e) if not isinstance(e, DiskFullError) else None
        if full is not None:
            raise DiskFullError(full.errno, path, "its previous content is kept" if path.exists() else "") from None
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` as UTF-8, atomically."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` that never leaves a truncated file behind."""
    atomic_write(path, lambda f: torch.save(obj, f))


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy ``src`` to ``dst`` atomically (cheaper than serialising a large checkpoint twice)."""
    with open(src, "rb") as fin:
        atomic_write(dst, lambda f: shutil.copyfileobj(fin, f, 16 << 20))


def _has_marker(root: Path, marker: str) -> bool:
    try:
        return (root / MARKER_NAME).read_text(encoding="utf-8") == marker
    except (OSError, UnicodeDecodeError):
        return False


def ensure_generated(root: str | os.PathLike, marker: str, generate: Callable[[Path], Any]) -> Path:
    """Return the folder ``root``, calling ``generate(folder)`` first unless ``root/VERSION`` reads ``marker``.

    ``generate`` fills a temp sibling of ``root``; ``marker`` is written into it last and the folder is renamed
    into place, so an interrupted run leaves nothing half-written, a changed ``marker`` (generator version,
    settings) regenerates, and concurrent callers end up sharing one copy.
    """
    root = Path(root)
    if _has_marker(root, marker):
        return root
    tmp = _temp_sibling(root, "tmp")
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
    except OSError as e:
        raise _cannot_write(root, e) from None
    stale = _temp_sibling(root, "old")
    try:
        generate(tmp)
        atomic_write_text(tmp / MARKER_NAME, marker)
        if root.exists():
            if _has_marker(root, marker):  # another process finished first
                return root
            with contextlib.suppress(FileNotFoundError):  # another process moved it first
                os.rename(root, stale)
        try:
            os.rename(tmp, root)
        except OSError:
            if not _has_marker(root, marker):  # lost a race to a process whose output is not ours
                raise
        _fsync_dir(root.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(stale, ignore_errors=True)
    return root
