"""Where generated data (built-in datasets) and disk caches live."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$SPATIO_CACHE`` if set, else ``~/.cache/spatiotemporal``."""
    env = os.environ.get("SPATIO_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "spatiotemporal"
