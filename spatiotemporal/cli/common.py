"""Flags and small helpers the commands share (no model or modality knowledge lives here)."""

from __future__ import annotations

from ..pipelines import family_of
from ..utils.errors import UserInputError


def split_words(words: list[str]) -> tuple[str | None, list[str]]:
    """``[NAME] [KEY=VALUE ...]`` -> ``(NAME or None, overrides)``."""
    names = [w for w in words if "=" not in w]
    if len(names) > 1:
        raise UserInputError(f"expected at most one model name before the KEY=VALUE overrides, got {names}")
    return (names[0] if names else None), [w for w in words if "=" in w]


def data_flags(args) -> list[str]:
    out = []
    if getattr(args, "data", None):
        out.append(f"data.dataset={args.data}")
    if getattr(args, "data_root", None):
        out.append(f"data.root={args.data_root}")
    return out


def check_family(name: str | None, model) -> None:
    """``spatio eval NAME --checkpoint C``: NAME, when given, must be C's family."""
    if name is not None and family_of(name) != model.arch:
        raise UserInputError(f"the checkpoint holds a {model.arch} model, not {name}")
