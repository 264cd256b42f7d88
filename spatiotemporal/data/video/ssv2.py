"""Something-Something V2 annotations: ``something-something-v2-labels.json`` (``{template: "index"}``) and
``something-something-v2-{train,validation}.json`` (``[{"id", "template", ...}]``, the template's ``[...]`` marks
removed give the class), as the official TimeSformer reads them. A video ``id`` is found under the videos folder
as a frame folder ``<id>/`` or a file ``<id>.webm`` / ``<id>.mp4`` (missing ones are kept and later skipped and
counted like any unreadable video). The test split reads the validation list (SSv2's test labels are not public).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..labels_csv import LabelsCSVError

LABELS_JSON = "something-something-v2-labels.json"
SPLIT_JSON = {"train": "something-something-v2-train.json", "val": "something-something-v2-validation.json",
              "test": "something-something-v2-validation.json"}
VIDEO_SUFFIXES = (".webm", ".mp4")


def _load(path: Path):
    if not path.is_file():
        raise FileNotFoundError(f"Something-Something V2 annotation {path} does not exist; --data ssv2 expects "
                                f"--data-root DIR holding {LABELS_JSON}, {SPLIT_JSON['train']} and "
                                f"{SPLIT_JSON['val']} (the videos there or under data.video.path_prefix)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise LabelsCSVError(f"{path}: not valid JSON ({e})") from None


def ssv2_class_names(root: str | Path) -> list[str]:
    """Class ``i`` is the template whose index in ``something-something-v2-labels.json`` is ``i``."""
    path = Path(root) / LABELS_JSON
    table = _load(path)
    if not isinstance(table, dict):
        raise LabelsCSVError(f"{path}: expected an object {{template: index}}, got {type(table).__name__}")
    names: dict[int, str] = {}
    for template, idx in table.items():
        try:
            names[int(idx)] = template
        except (TypeError, ValueError):
            raise LabelsCSVError(f"{path}: template {template!r} has index {idx!r}; expected an integer") from None
    if sorted(names) != list(range(len(names))):
        raise LabelsCSVError(f"{path}: class indices must be 0..{len(names) - 1}, got {sorted(names)[:5]}...")
    return [names[i] for i in range(len(names))]


def _video_path(videos: Path, vid: str) -> Path:
    for cand in (videos / vid, *(videos / f"{vid}{s}" for s in VIDEO_SUFFIXES)):
        if cand.exists():
            return cand
    return videos / f"{vid}{VIDEO_SUFFIXES[0]}"


def read_ssv2_split(root: str | Path, split: str, videos: str | Path | None = None) -> tuple[list, list[str]]:
    """``([(video path, label)], class_names)`` of ``split``; ``videos``: the folder of the videos or frame
    folders (default ``root``)."""
    root = Path(root)
    names = ssv2_class_names(root)
    index = {n: i for i, n in enumerate(names)}
    path = root / SPLIT_JSON[split]
    items = _load(path)
    base = Path(videos) if videos is not None else root
    samples = []
    for k, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, dict) or "id" not in item or "template" not in item:
            raise LabelsCSVError(f"{path}: entry {k} needs 'id' and 'template', got {str(item)[:80]}")
        template = str(item["template"]).replace("[", "").replace("]", "")
        if template not in index:
            raise LabelsCSVError(f"{path}: entry {k} (id {item['id']}): template {template!r} is not in {LABELS_JSON}")
        samples.append((_video_path(base, str(item["id"])), index[template]))
    if not isinstance(items, list):
        raise LabelsCSVError(f"{path}: expected a list of {{'id', 'template'}} entries")
    return samples, names
