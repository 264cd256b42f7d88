"""Kinetics-style split files: one ``path label`` per line, as in TimeSformer / PySlowFast / pytorchvideo.

Accepted line forms (auto-detected per line):

- ``path label`` — whitespace separator (the official one); used for lines without a comma, so the
  path can contain neither spaces nor commas.
- ``path,label`` — comma separator, used whenever the line has a comma: the *last* comma splits, so the
  path may contain spaces and commas and the label may be a class name with spaces (``air drumming``).
  A path wrapped in double quotes has them removed.

``label`` is an integer class index or a class name. Names are mapped with a class list
(``classes.txt``: one name per line, index = line number), or, when no class file exists, with the
sorted set of names found in all the split files. Relative paths are resolved against ``root``.
Empty lines are ignored; a first line that reads ``path label`` / ``path,label`` (a header) is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

_HEADER_PATHS = {"path", "video", "filename", "file", "video_path"}
_HEADER_LABELS = {"label", "class", "label_id", "target"}


class VideoCSVError(ValueError):
    """A malformed split or class file; the message starts with ``file:line:``."""


def _split_line(line: str) -> tuple[str, str] | None:
    """``(path, label_token)`` of one stripped line, or None when it does not have that form."""
    if "," in line:
        path, label = line.rsplit(",", 1)
        path, label = path.strip(), label.strip()
        if len(path) >= 2 and path[0] == path[-1] == '"':
            path = path[1:-1]
        return (path, label) if path and label else None
    parts = line.split()
    if len(parts) == 2:
        return parts[0], parts[1]
    return None


def _parse_int(token: str) -> int | None:
    try:
        return int(token)
    except ValueError:
        return None


def iter_csv_rows(csv_path: str | Path) -> Iterable[tuple[int, str, str]]:
    """Yield ``(line_number, path_token, label_token)`` for every non-empty, non-header line.

    Raises:
        FileNotFoundError: the split file does not exist.
        VideoCSVError: a line is not ``path label`` / ``path,label``.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"split file not found: {csv_path}")
    with open(csv_path, encoding="utf-8") as f:
        first = True
        for lineno, raw in enumerate(f, start=1):
            line = raw.strip()
            if not line:
                continue
            row = _split_line(line)
            if row is None:
                raise VideoCSVError(
                    f"{csv_path}:{lineno}: expected 'path label' (space or comma separated), got {line!r}"
                )
            if first and row[0].lower() in _HEADER_PATHS and row[1].lower() in _HEADER_LABELS:
                first = False
                continue
            first = False
            yield lineno, row[0], row[1]


def read_class_file(path: str | Path) -> list[str]:
    """Class names of ``classes.txt`` (one per line; index = line number; trailing newline fine)."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    names: list[str] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(lines, start=1):
        name = raw.strip()
        if not name:
            raise VideoCSVError(f"{path}:{lineno}: empty class name (index = line number, so no blank lines)")
        if name in seen:
            raise VideoCSVError(f"{path}:{lineno}: duplicate class name {name!r} (first at line {seen[name]})")
        seen[name] = lineno
        names.append(name)
    if not names:
        raise VideoCSVError(f"{path}: no class names")
    return names


def infer_class_names(csv_paths: Sequence[str | Path]) -> list[str]:
    """Class names implied by the labels of several split files (no class file available).

    All-integer labels give ``[str(i) for i in range(max + 1)]``; all-name labels give the sorted names.
    """
    ints: list[int] = []
    names: set[str] = set()
    where: str | None = None
    for csv_path in csv_paths:
        for lineno, _, token in iter_csv_rows(csv_path):
            value = _parse_int(token)
            if value is None:
                names.add(token)
            else:
                if value < 0:
                    raise VideoCSVError(f"{csv_path}:{lineno}: negative label {value}")
                ints.append(value)
            if ints and names and where is None:
                where = f"{csv_path}:{lineno}"
    if where is not None:
        raise VideoCSVError(
            f"{where}: labels mix integers and class names; add a classes.txt (one name per line)"
        )
    if ints:
        return [str(i) for i in range(max(ints) + 1)]
    return sorted(names)


def read_video_csv(
    csv_path: str | Path,
    root: str | Path | None = None,
    class_names: Sequence[str] | str | Path | None = None,
) -> tuple[list[tuple[Path, int]], list[str]]:
    """Parse one split file.

    Args:
        csv_path: the ``train.csv`` / ``val.csv`` / ``test.csv`` file.
        root: base directory of relative paths (default: the split file's directory).
        class_names: a list of names, a path to a class file, or None (names inferred from this file).

    Returns:
        ``(samples, class_names)``: ``samples`` is a list of ``(absolute path, label index)``.

    Raises:
        VideoCSVError: malformed line, unknown class name or out-of-range index (message ``file:line:``).
    """
    csv_path = Path(csv_path)
    base = Path(root) if root is not None else csv_path.parent
    if class_names is None:
        names = infer_class_names([csv_path])
    elif isinstance(class_names, (str, Path)):
        names = read_class_file(class_names)
    else:
        names = [str(n) for n in class_names]
    index = {n: i for i, n in enumerate(names)}
    samples: list[tuple[Path, int]] = []
    for lineno, path_token, token in iter_csv_rows(csv_path):
        label = index.get(token)
        if label is None:
            label = _parse_int(token)
            if label is None:
                raise VideoCSVError(f"{csv_path}:{lineno}: unknown class name {token!r} ({len(names)} classes)")
            if not 0 <= label < len(names):
                raise VideoCSVError(
                    f"{csv_path}:{lineno}: label {label} out of range for {len(names)} classes"
                )
        path = Path(path_token).expanduser()
        samples.append((path if path.is_absolute() else base / path, label))
    return samples, names
