"""Decathlon-style dataset JSON (``dataset_0.json``): read, validate and write.

Layout (MSD / BTCV convention, paths relative to the dataset root)::

    {"labels": {"0": "background", "1": "spleen", ...},
     "training":   [{"image": "imagesTr/img0001.nii.gz", "label": "labelsTr/label0001.nii.gz"}, ...],
     "validation": [{"image": ..., "label": ...}, ...]}
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monai.data import load_decathlon_datalist, partition_dataset

from ...utils.errors import SpatioUserError
from ..paths import warn_paths_outside_root

DEFAULT_JSON_NAME = "dataset_0.json"


class VolumeDataError(SpatioUserError, ValueError):
    """Bad 3D input (dataset JSON, NIfTI file or label map); the message names the case and the expectation."""


@dataclass
class VolumeDatalist:
    """Cases of a decathlon-style dataset, with absolute paths.

    ``training`` / ``validation``: lists of ``{"image": str, "label": str}`` (``image`` a list of one file per
    channel in the BraTS layout); ``class_names``: names ordered by label value (index ``k`` is label ``k``, 0 is
    background); ``json_path``: the dataset JSON (the root folder for the BraTS layout); ``channel_names``: the
    image channels' names when the layout gives them without a JSON.
    """

    training: list[dict]
    validation: list[dict]
    class_names: list[str]
    json_path: Path
    channel_names: list[str] | None = None


def parse_class_names(labels: Any, where: str) -> list[str]:
    """``{"0": "background", "1": "spleen", ...}`` -> ``["background", "spleen", ...]``.

    The keys must be the integers ``0..K-1`` (one output channel per label value).
    """
    if not isinstance(labels, Mapping) or not labels:
        raise VolumeDataError(f"{where}: 'labels' must be a non-empty map like {{\"0\": \"background\", "
                              f"\"1\": \"spleen\"}}, got {labels!r}")
    try:
        by_value = {int(k): str(v) for k, v in labels.items()}
    except (TypeError, ValueError) as e:
        raise VolumeDataError(f"{where}: 'labels' keys must be integer label values, got {list(labels)}") from e
    if sorted(by_value) != list(range(len(by_value))):
        raise VolumeDataError(f"{where}: 'labels' keys must be 0..{len(by_value) - 1} without gaps "
                              f"(0 = background), got {sorted(by_value)}")
    return [by_value[k] for k in range(len(by_value))]


def _check_entries(raw: Any, json_path: Path, key: str) -> None:
    if not isinstance(raw, list) or not raw:
        raise VolumeDataError(f"{json_path}: '{key}' must be a non-empty list of {{\"image\", \"label\"}} "
                              f"entries, got {type(raw).__name__}")
    for i, entry in enumerate(raw):
        if not isinstance(entry, Mapping):
            raise VolumeDataError(f"{json_path}: {key}[{i}] must be a dict with 'image' and 'label', got {entry!r}")
        for field in ("image", "label"):
            if not isinstance(entry.get(field), str) or not entry.get(field):
                raise VolumeDataError(f"{json_path}: {key}[{i}] has no '{field}' path (expected a file path "
                                      f"relative to the dataset root), got {dict(entry)!r}")


def _load_list(json_path: Path, root: Path, key: str) -> list[dict[str, str]]:
    items = load_decathlon_datalist(json_path, is_segmentation=True, data_list_key=key, base_dir=root)
    out = []
    for i, item in enumerate(items):
        for field in ("image", "label"):
            if not Path(item[field]).is_file():
                raise VolumeDataError(f"{json_path}: {key}[{i}] lists {field} '{item[field]}', which does not "
                                      f"exist (paths are relative to {root})")
        out.append({"image": str(item["image"]), "label": str(item["label"])})
    return out


def load_volume_datalist(root: str | Path, json_name: str = DEFAULT_JSON_NAME,
                         val_fraction: float = 0.2) -> VolumeDatalist:
    """Read ``root/json_name`` with MONAI's ``load_decathlon_datalist`` and check it.

    Required keys: ``training`` and ``labels``. If ``validation`` is absent (MSD ``dataset.json``), the last
    ``ceil(val_fraction * n)`` training cases become the validation list, with a warning.
    Raises ``VolumeDataError`` naming the JSON, the list, the entry index and the path of a missing file.
    """
    root = Path(root).expanduser().resolve()
    json_path = root / json_name
    if not json_path.is_file():
        raise VolumeDataError(f"dataset JSON {json_path} not found (expected a decathlon-style '{json_name}' "
                              f"in the dataset root {root})")
    try:
        meta = json.loads(json_path.read_text())
    except json.JSONDecodeError as e:
        raise VolumeDataError(f"{json_path}: not valid JSON ({e})") from e
    if not isinstance(meta, dict):
        raise VolumeDataError(f"{json_path}: expected a JSON object at top level, got {type(meta).__name__}")
    for key in ("training", "labels"):
        if key not in meta:
            raise VolumeDataError(f"{json_path}: missing key '{key}' (expected 'training', 'validation' lists "
                                  f"of {{image, label}} and a 'labels' map), found keys {sorted(meta)}")
    class_names = parse_class_names(meta["labels"], f"{json_path}")
    _check_entries(meta["training"], json_path, "training")
    lists = [k for k in ("training", "validation") if isinstance(meta.get(k), list)]
    warn_paths_outside_root(json_path, [(f"{k}[{i}].{f}", e[f]) for k in lists for i, e in enumerate(meta[k])
                                        if isinstance(e, Mapping) for f in ("image", "label")
                                        if isinstance(e.get(f), str)], root)
    training = _load_list(json_path, root, "training")
    if "validation" in meta:
        _check_entries(meta["validation"], json_path, "validation")
        validation = _load_list(json_path, root, "validation")
    else:
        n_val = max(1, math.ceil(val_fraction * len(training)))
        if n_val >= len(training):
            raise VolumeDataError(f"{json_path}: no 'validation' list and only {len(training)} training "
                                  f"case(s), too few to hold some out; add a 'validation' list")
        warnings.warn(f"{json_path}: no 'validation' list; holding out the last {n_val} of {len(training)} "
                      f"training cases for validation", stacklevel=2)
        training, validation = training[:-n_val], training[-n_val:]
    return VolumeDatalist(training, validation, class_names, json_path)


def case_id(item: Mapping[str, str]) -> str:
    """The id of a case in a run's records: its image's file name (never a path of the machine)."""
    return Path(item["image"]).name


def fold_split(cases: Sequence[Mapping[str, str]], *, folds: int, fold: int, seed: int,
               where: str = "the training list") -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Fold ``fold`` of a ``folds``-fold cross-validation of ``cases``: ``(training, validation)``.

    The cases are shuffled with ``seed`` and dealt into ``folds`` parts by MONAI's
    ``partition_dataset(num_partitions=folds, shuffle=True, seed=seed, even_divisible=False)`` (every case in
    exactly one part, part sizes differ by at most one); part ``fold`` is the validation set, the other
    ``folds - 1`` parts (in their order) the training set, as nnU-Net's folds. Raises ``VolumeDataError`` naming
    ``data.fold`` / ``data.folds`` unless ``2 <= folds <= len(cases)`` and ``0 <= fold < folds``.
    """
    n = len(cases)
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise VolumeDataError(f"data.folds (--folds) must be an integer >= 2 for a k-fold split (0: no folds), "
                              f"got {folds!r}")
    if folds > n:
        raise VolumeDataError(f"data.folds (--folds) is {folds}, but {where} has only {n} case(s): at most {n} "
                              f"folds, each validating on at least one case")
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < folds:
        raise VolumeDataError(f"data.fold (--fold) must be an integer in [0, {folds - 1}] for data.folds={folds}, "
                              f"got {fold!r}")
    parts = partition_dataset([dict(c) for c in cases], num_partitions=folds, shuffle=True, seed=seed,
                              even_divisible=False)
    training = [c for k, part in enumerate(parts) if k != fold for c in part]
    return training, list(parts[fold])


def write_datalist(root: str | Path, training: Sequence[Mapping[str, str]],
                   validation: Sequence[Mapping[str, str]], class_names: Sequence[str],
                   json_name: str = DEFAULT_JSON_NAME, **extra: Any) -> Path:
    """Write a decathlon-style JSON into ``root``; paths must already be relative to ``root``."""
    doc: dict[str, Any] = dict(extra)
    doc["labels"] = {str(i): name for i, name in enumerate(class_names)}
    doc["tensorImageSize"] = doc.get("tensorImageSize", "3D")
    doc["numTraining"] = len(training)
    doc["training"] = [{"image": str(t["image"]), "label": str(t["label"])} for t in training]
    doc["validation"] = [{"image": str(t["image"]), "label": str(t["label"])} for t in validation]
    path = Path(root) / json_name
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path
