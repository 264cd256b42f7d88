"""Helpers shared by the MiT / PVTv2 / SegFormer converters: stage and block counts, block key rules."""

from __future__ import annotations

import re

from .rename import rename_key


def stage_count(sd: dict, prefix: str) -> int:
    """Number of stages ``prefix{i}.`` in ``sd``."""
    idx = {int(m.group(1)) for k in sd if (m := re.match(rf"^{re.escape(prefix)}(\d+)\.", k))}
    return max(idx) + 1 if idx else 0


def stage_depths(sd: dict, pattern: str, n: int) -> tuple[int, ...]:
    """Blocks per stage; ``pattern`` has ``{}`` for the stage index, e.g. ``"stages.{}.blocks."``."""
    out = []
    for i in range(n):
        p = re.escape(pattern.format(i))
        idx = {int(m.group(1)) for k in sd if (m := re.match(rf"^{p}(\d+)\.", k))}
        out.append(max(idx) + 1 if idx else 0)
    return tuple(out)


def mit_block_rule(rules: list[tuple[str, str]], rest: str) -> str | None:
    """``rest`` (a key after ``...blocks.{j}.``) renamed by the first matching rule, or None."""
    return rename_key(rest, rules)
