"""Where the volume pipeline keeps generated data and disk caches."""

from __future__ import annotations

import os
from pathlib import Path


def spatio_cache_root() -> Path:
    """``$SPATIO_CACHE`` if set, else ``~/.cache/spatiotemporal``."""
    env = os.environ.get("SPATIO_CACHE")
    return Path(env).expanduser() if env else Path("~/.cache/spatiotemporal").expanduser()
