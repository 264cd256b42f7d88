"""Regex renaming of state-dict keys, shared by the converters: ``(pattern, replacement)`` rules, first match wins."""

from __future__ import annotations

import re

import torch

Rules = list[tuple[str, str]]


def rename_key(key: str, rules: Rules) -> str | None:
    """``key`` renamed by the first rule whose pattern it contains, or None when no rule matches."""
    for pat, rep in rules:
        if re.search(pat, key):
            return re.sub(pat, rep, key)
    return None


def rename_keys(sd: dict[str, torch.Tensor], rules: Rules) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Every key renamed by :func:`rename_key`; returns ``(renamed, keys no rule matched)``."""
    out, unknown = {}, []
    for k, v in sd.items():
        new = rename_key(k, rules)
        if new is None:
            unknown.append(k)
        else:
            out[new] = v
    return out, unknown
