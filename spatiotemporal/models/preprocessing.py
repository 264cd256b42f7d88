"""The preprocessing spec a checkpoint carries: what turns an input file into the model's input tensor.

A dict of the recipe's ``data`` keys that decide the input (frames, sampling rate, crop size, test views, mean /
std for videos; orientation, spacing, intensity window, ROI, sliding-window overlap and blending for volumes ...),
nested as in the recipe, plus ``version`` (:data:`PREPROCESSING_VERSION`) and, for RGB modalities, the
``channel_order`` the pixels are in. Which keys those are is declared by each modality's pipeline
(``Pipeline.preprocessing_keys``, registered here with :func:`declare_preprocessing`); the spec never holds a path,
a cache or an augmentation setting. Example (video)::

    {"version": 1, "channel_order": "RGB", "dataset": "builtin", "view_reduce": "mean",
     "video": {"num_frames": 8, "sampling_rate": 2, "crop_size": 32, "mean": [0.45, 0.45, 0.45], ...}}

Upgrade rule: version 1 is the first; a spec of a newer version is refused (written by a newer spatiotemporal).
Format-2 model specs stored the whole recipe ``data`` section instead: :func:`from_recipe_data` reduces it to the
declared keys, dropping any value that looks like a path.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from .convert import CheckpointFormatError

__all__ = ["PREPROCESSING_VERSION", "check_finite", "declare_preprocessing", "declared_keys", "from_recipe_data",
           "path_like", "select_keys", "upgrade_preprocessing"]

PREPROCESSING_VERSION = 1

_DECLARED: dict[str, tuple[str, ...]] = {}


def declare_preprocessing(modality: str, keys: Iterable[str]) -> None:
    """Record the dotted recipe ``data`` keys that are ``modality``'s preprocessing (each pipeline does, on
    import)."""
    _DECLARED[modality] = tuple(keys)


def declared_keys(modality: str | None) -> tuple[str, ...] | None:
    """The preprocessing keys of ``modality``, None while its pipeline is not imported."""
    return _DECLARED.get(modality) if modality else None


def path_like(value: Any) -> bool:
    """A string that names a place on a machine (``/``, ``\\``, ``~`` or a drive letter in it)."""
    return isinstance(value, str) and (any(c in value for c in "/\\~") or (len(value) > 1 and value[1] == ":"))


def select_keys(data: Mapping, keys: Iterable[str], *, drop_paths: bool = True) -> tuple[dict, list[str]]:
    """The nested subset of ``data`` named by the dotted ``keys`` that it holds, without path-like values (with
    ``drop_paths``); returns ``(subset, dotted keys dropped as path-like)``."""
    out: dict = {}
    dropped = []
    for key in keys:
        node: Any = data
        parts = key.split(".")
        for part in parts:
            if not isinstance(node, Mapping) or part not in node:
                break
            node = node[part]
        else:
            if drop_paths and path_like(node):
                dropped.append(key)
                continue
            dst = out
            for part in parts[:-1]:
                dst = dst.setdefault(part, {})
            dst[parts[-1]] = node
    return out, dropped


def _leaves(tree: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(tree, Mapping):
        for k, v in tree.items():
            yield from _leaves(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            yield from _leaves(v, f"{prefix}[{i}]")
    else:
        yield prefix, tree


def from_recipe_data(modality: str | None, data: Mapping) -> tuple[dict, list[str]]:
    """A format-2 spec's ``data`` (the whole recipe data section) -> ``(preprocessing spec, dropped keys)``: the
    modality's declared keys (every non-path key when its pipeline is not imported), path-like values dropped."""
    keys = declared_keys(modality)
    if keys is None:
        keys = [k.split("[")[0] for k, _ in _leaves(data)]
    kept, _ = select_keys(data, dict.fromkeys(keys))
    kept_keys = {k.split("[")[0] for k, _ in _leaves(kept)}
    dropped = sorted({k.split("[")[0] for k, _ in _leaves(data)} - kept_keys)
    return {"version": PREPROCESSING_VERSION, **kept}, dropped


def check_finite(tree: Any, where: str, prefix: str = "") -> None:
    """Every number in ``tree`` (a spec or a part of it) is finite: else a :class:`CheckpointFormatError` naming
    ``where`` and the dotted key."""
    for key, value in _leaves(tree, prefix):
        if isinstance(value, float) and not math.isfinite(value):
            raise CheckpointFormatError(f"{where}: the stored spec's '{key}' is {value}; expected a finite number "
                                        "(the file was edited or damaged)")


def check_version(version: Any, key: str, what: str, newest: int, where: str) -> int:
    """A stored format ``version`` (under ``key``) that this package reads: an integer from 1 to ``newest``, else a
    :class:`CheckpointFormatError` naming ``where`` (a newer one: upgrade the package)."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointFormatError(f"{where}: the stored spec's '{key}' is {version!r}; expected an integer from 1 "
                                    f"to {newest}")
    if version > newest:
        raise CheckpointFormatError(f"{where}: {what} {version} was written by a newer spatiotemporal (this one "
                                    f"reads up to {newest}); upgrade it")
    return version


def upgrade_preprocessing(prep: Any, where: str) -> dict:
    """A stored preprocessing spec, checked and upgraded to :data:`PREPROCESSING_VERSION` (version 1 is the
    first, so only its shape is checked): a :class:`CheckpointFormatError` naming ``where`` for anything else."""
    if prep is None:
        return {"version": PREPROCESSING_VERSION}
    if not isinstance(prep, Mapping):
        raise CheckpointFormatError(f"{where}: the stored spec's 'preprocessing' is a {type(prep).__name__}; "
                                    "expected a mapping")
    check_version(prep.get("version", PREPROCESSING_VERSION), "preprocessing.version", "preprocessing spec version",
                  PREPROCESSING_VERSION, where)
    check_finite(prep, where, "preprocessing")
    return {**prep, "version": PREPROCESSING_VERSION}
