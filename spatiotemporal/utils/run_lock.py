"""A run owns its folder: an advisory lock on ``FOLDER/.spatio.lock`` for as long as a run writes there.

``spatio train``, ``pretrain`` and ``embed`` take it before they write anything into their ``--out``. A second run
into the same folder stops at once with one line naming the holder (:class:`RunFolderBusy`, exit 2). The lock is
``fcntl.flock``: the operating system releases it when the holder ends, however it ends, so the lock of a killed
run (``kill -9``, out of memory) is taken over by the next run, with one warning naming the run that died. The
lock file holds the holder's pid, host, command and start time (no path); it is removed when the run ends, and
a folder the lock created is removed again if the run wrote nothing into it.

Under torchrun only global rank 0 (``RANK``) takes the lock: the other ranks write nothing of their own into the
run folder, and a rank that waited for a lock would block the collective start of the run.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import SpatioUserError, UserInputError

try:
    import fcntl
except ImportError:  # Windows: no flock
    fcntl = None

__all__ = ["LOCK_NAME", "RunFolderBusy", "run_lock"]

log = logging.getLogger("spatiotemporal.run_lock")

LOCK_NAME = ".spatio.lock"
#: flock is not supported on this file system (some network mounts): the run goes on unlocked, with a warning.
_UNSUPPORTED = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


class RunFolderBusy(SpatioUserError):
    """Another live run holds the folder's lock; the message names its pid, host, command and start."""


def _describe(holder: dict) -> str:
    """``pid 123 on HOST: spatio train since 2026-01-01 10:00:00 UTC`` (what the record holds of it)."""
    text = f"pid {holder.get('pid', 'unknown')}" + (f" on {holder['host']}" if holder.get("host") else "")
    if holder.get("command"):
        text += f": spatio {holder['command']}" + (f" since {holder['started']}" if holder.get("started") else "")
    return text


def _read_holder(fd: int) -> dict | None:
    """The lock file's record (None if empty or unreadable)."""
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 4096)
    if not raw.strip():
        return None
    try:
        holder = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _make_folder(folder: Path) -> list[Path]:
    """Create ``folder`` (and missing parents); the folders created, outermost first."""
    if folder.exists() and not folder.is_dir():
        raise UserInputError(f"{folder}: is a file; expected a run folder (a new or existing folder)")
    created = []
    p = folder
    while not p.exists() and p != p.parent:
        created.append(p)
        p = p.parent
    folder.mkdir(parents=True, exist_ok=True)
    return created[::-1]


def _open_locked(lock: Path) -> int | None:
    """An fd of ``lock`` holding its exclusive flock, or None where the file system has no flock."""
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except FileNotFoundError:  # a run that created the folder and wrote nothing removed it just now
            lock.parent.mkdir(parents=True, exist_ok=True)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd) or {}
            os.close(fd)
            raise RunFolderBusy(f"{lock.parent} is in use by another run ({_describe(holder)}); wait for it to end "
                                "or choose another --out") from None
        except OSError as e:
            os.close(fd)
            if e.errno in _UNSUPPORTED:
                log.warning("%s: cannot lock the run folder (%s); two runs into it at once would mix their files",
                            lock, e.strerror)
                return None
            raise
        try:  # the previous holder may have removed the file between our open and our lock: lock the new one
            if os.path.samestat(os.fstat(fd), os.stat(lock)):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike, command: str) -> Iterator[Path]:
    """Hold the lock of run folder ``folder`` (created if missing) for the ``with`` block; ``command`` (``train``,
    ``pretrain``, ``embed``) is recorded for the message another run gets. Yields the folder.

    :class:`RunFolderBusy` if a live process holds it; a lock left by a run that ended without releasing it is
    taken over with a warning. A no-op on ranks other than 0 under torchrun and where there is no ``fcntl``.
    """
    folder = Path(folder)
    if int(os.environ.get("RANK", "0") or 0) != 0 or fcntl is None:
        yield folder
        return
    created = _make_folder(folder)
    lock = folder / LOCK_NAME
    fd = None
    try:
        fd = _open_locked(lock)
        if fd is not None:
            stale = _read_holder(fd)
            if stale is not None:
                log.warning("%s: took over the lock of a run that ended without releasing it (%s); the files it "
                            "wrote are kept", folder, _describe(stale))
            record = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                      "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(record) + "\n").encode("utf-8"), 0)
        yield folder
    finally:
        if fd is not None:
            with contextlib.suppress(OSError):
                lock.unlink()
            os.close(fd)  # releases the flock
        for p in reversed(created):  # nothing written: leave no empty folder behind
            with contextlib.suppress(OSError):
                p.rmdir()
