"""Clean-up of the temp files that atomic writes killed mid-way leave behind.

``atomic.atomic_write`` writes ``path`` through ``.{name}.{pid}.{8 hex}.tmp`` in the same folder and
renames it; a process killed (SIGKILL, OOM, power loss) between the two leaves that file. Only files
of that exact pattern whose writer process no longer exists on this host are removed: a live pid
(ours included, or a reused pid) keeps its file, since a writer may still be using it.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

__all__ = ["remove_orphaned_temp_files"]

_TEMP_NAME = re.compile(r"^\..+\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")


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
    """Delete ``directory``'s orphaned atomic-write temp files (not recursive); returns the removed paths."""
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
