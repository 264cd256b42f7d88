"""The one parser of ``KEY=VALUE`` words: recipe overrides (``optim.lr=0.01``), ``spatio inflate`` targets
(``num_frames=16``) and ``viz`` model specs (``NAME:mixer=xca,mixer_kwargs.ndim=2``).

Values are YAML (``16`` an int, ``[32,32,32]`` a list, ``null`` None, an empty value None); keys may be dotted.
A malformed word is one line that names it and the expected form.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from .errors import UserInputError

__all__ = ["parse_key_values", "nest_keys", "split_top_level"]


def parse_key_values(items: Iterable[str], *, where: str = "command line", example: str = "optim.lr=0.01",
                     error: type[Exception] = UserInputError) -> list[tuple[str, Any]]:
    """``["optim.lr=0.01", "mixer=joint"]`` -> ``[("optim.lr", 0.01), ("mixer", "joint")]``, in order.

    ``where`` starts every message (the command line, a model spec), ``example`` shows the expected form and
    ``error`` is the exception raised (the config loader raises its ``ConfigError``).
    """
    parsed = []
    for item in items:
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq:
            raise error(f"{where}: malformed override '{item}': expected key=value, e.g. {example}")
        if not key or any(not part for part in key.split(".")):
            raise error(f"{where}: malformed override '{item}': empty key, expected key=value, e.g. {example}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as e:
            reason = " ".join(str(e).split())
            raise error(f"{where}: override '{item}': value is not valid YAML ({reason})") from e
        parsed.append((key, value))
    return parsed


def nest_keys(pairs: Iterable[tuple[str, Any]]) -> dict:
    """``[("a", 1), ("b.c", "x")]`` -> ``{"a": 1, "b": {"c": "x"}}`` (dotted keys into nested dicts)."""
    out: dict = {}
    for key, value in pairs:
        *path, last = key.split(".")
        target = out
        for part in path:
            if not isinstance(target.get(part), dict):
                target[part] = {}
            target = target[part]
        target[last] = value
    return out


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split ``text`` on ``sep`` outside brackets and braces (``"a=[1,2],b=3"`` -> ``["a=[1,2]", "b=3"]``);
    blank parts are dropped."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch in "[({"
        depth -= ch in "])}"
        if ch == sep and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]
