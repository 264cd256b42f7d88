"""Where generated data (built-in datasets) and disk caches live; dataset paths that leave their data root."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger("spatiotemporal.data")


def cache_root() -> Path:
    """``$SPATIO_CACHE`` if set, else ``~/.cache/spatiotemporal``."""
    env = os.environ.get("SPATIO_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "spatiotemporal"


def leaves_root(token: str, root: str | os.PathLike) -> bool:
    """True for a relative dataset path whose ``..`` parts lead out of ``root`` (an absolute path is not: pointing
    outside the root is what it is for; symbolic links are not followed)."""
    p = Path(token).expanduser()
    if p.is_absolute():
        return False
    base = os.path.normpath(os.path.abspath(root))
    return os.path.commonpath([base, os.path.normpath(os.path.join(base, p))]) != base


_WARNED: set[str] = set()


def warn_paths_outside_root(source: str | os.PathLike, entries: list[tuple[str, str]],
                            root: str | os.PathLike) -> None:
    """One warning per ``source`` file (per process) when some of its ``entries`` (``(where, path)``, e.g.
    ``("line 3", "../x.mp4")``) are relative paths that lead out of the data ``root``: they are read, but only
    absolute paths are documented to point outside it (a moved or shared dataset folder loses them)."""
    out = [(where, path) for where, path in entries if leaves_root(path, root)]
    key = os.path.abspath(source)
    if not out or key in _WARNED:
        return
    _WARNED.add(key)
    where, path = out[0]
    log.warning("%s: %d relative path(s) lead out of the data root %s with '..' (the first: %s, %s); they are read, "
                "but only absolute paths are meant to point outside the root", source, len(out), root, where, path)
