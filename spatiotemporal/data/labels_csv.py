"""The one reader of ``path,label`` lists (image CSVs, Kinetics-style video split files) and class files.

Rules of a labels file (UTF-8, a byte-order mark is accepted):

- One sample per line, in one of two forms, chosen per line:
  ``path label`` (whitespace separated, the TimeSformer / PySlowFast form; the path has no spaces or commas) or
  ``path,label`` (used whenever the line holds a comma; standard CSV quoting, so a path or class name with
  commas is written in double quotes: ``"a, b.mp4",3``).
- Blank lines and lines starting with ``#`` are skipped. The first line is skipped when it is a header such as
  ``path,label`` / ``video label`` / ``filename,class`` (see ``HEADER_PATHS`` / ``HEADER_LABELS``).
- Relative paths are resolved against ``root`` (default: the file's folder); ``~`` is expanded.
- A label is a class name or an integer class index. With a class list, a token equal to a class name maps to
  that name's index, otherwise it must be an index into the list. Without one, the labels of a file are all
  integers (classes ``"0"`` .. ``str(max)``) or all names (classes = the sorted names). Sparse integer labels
  (e.g. only 0 and 40: a 41-class model, 39 classes no file uses) are accepted with a warning that names the
  files and how to name the classes (a class file).
- Every error is a ``LabelsCSVError`` (a ``ValueError``) whose message starts with ``file:line:`` and says what
  was expected.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..utils.errors import SpatioUserError
from .paths import warn_paths_outside_root

log = logging.getLogger(__name__)
_warned: set[str] = set()

HEADER_PATHS = {"path", "video", "video_path", "image", "image_path", "filename", "file"}
HEADER_LABELS = {"label", "labels", "class", "class_name", "label_id", "target"}
_FORMS = "'path label' or 'path,label'"


class LabelsCSVError(SpatioUserError, ValueError):
    """A malformed labels or class file; the message starts with ``file:line:``."""


def _fields(line: str, where: str) -> tuple[str, str]:
    if "," in line:
        try:
            fields = next(csv.reader([line], skipinitialspace=True, strict=True))
        except csv.Error as e:
            raise LabelsCSVError(f"{where}: malformed CSV quoting ({e}); expected {_FORMS}, got {line!r}") from None
        hint = " (write a path or class name that holds commas in double quotes)"
    else:
        fields = line.split()
        hint = " (use the 'path,label' form for a path or class name with spaces)"
    fields = [f.strip() for f in fields]
    if len(fields) != 2 or not fields[0] or not fields[1]:
        raise LabelsCSVError(f"{where}: expected {_FORMS}{hint}, got {line!r}")
    return fields[0], fields[1]


def iter_label_rows(csv_path: str | Path) -> Iterator[tuple[int, str, str]]:
    """Yield ``(line_number, path_token, label_token)`` of every sample line (see the module rules).

    Raises ``FileNotFoundError`` for a missing file and ``LabelsCSVError`` for a malformed line.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(f"labels file {csv_path} does not exist (expected one {_FORMS} per line)")
    first = True
    for lineno, raw in enumerate(_utf8_lines(csv_path), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        path, label = _fields(line, f"{csv_path}:{lineno}")
        if first and path.lower() in HEADER_PATHS and label.lower() in HEADER_LABELS:
            first = False
            continue
        first = False
        yield lineno, path, label


def _utf8_lines(path: Path) -> Iterator[str]:
    """The lines of a UTF-8 text file (a byte-order mark is dropped); a line that is not UTF-8 is a
    ``LabelsCSVError`` naming it."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise LabelsCSVError(f"{path}:{lineno}: not UTF-8 text (byte 0x{raw[e.start]:02x} at column "
                                     f"{e.start + 1}); save the file as UTF-8") from None


def _int(token: str) -> int | None:
    try:
        return int(token)
    except ValueError:
        return None


def read_class_file(path: str | Path) -> list[str]:
    """Class names of a class file (``classes.txt``: one name per line, index = line number)."""
    path = Path(path)
    lines = [ln.rstrip("\r\n") for ln in _utf8_lines(path)]
    while lines and not lines[-1].strip():
        lines.pop()
    names: list[str] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(lines, start=1):
        name = raw.strip()
        if not name:
            raise LabelsCSVError(f"{path}:{lineno}: empty class name (index = line number, so no blank lines)")
        if name in seen:
            raise LabelsCSVError(f"{path}:{lineno}: duplicate class name {name!r} (first at line {seen[name]})")
        seen[name] = lineno
        names.append(name)
    if not names:
        raise LabelsCSVError(f"{path}: no class names (expected one per line)")
    return names


def infer_class_names(csv_paths: Sequence[str | Path]) -> list[str]:
    """Class names implied by the labels of one or more labels files (no class list available).

    All-integer labels give ``[str(i) for i in range(max + 1)]``; all-name labels give the sorted names.
    """
    top = -1
    used: set[int] = set()
    names: set[str] = set()
    kind: tuple[str, str] | None = None  # (first kind seen, where)
    for csv_path in csv_paths:
        for lineno, _, token in iter_label_rows(csv_path):
            where = f"{csv_path}:{lineno}"
            value = _int(token)
            this = "name" if value is None else "integer"
            if kind is None:
                kind = (this, where)
            elif this != kind[0]:
                raise LabelsCSVError(
                    f"{where}: label {token!r} mixes integers and class names (the labels are {kind[0]}s from "
                    f"{kind[1]} on); expected one kind, or give a class list (classes.txt, one name per line)"
                )
            if value is None:
                names.add(token)
            elif value < 0:
                raise LabelsCSVError(f"{where}: negative label {value}; expected a class index >= 0 or a name")
            else:
                top = max(top, value)
                used.add(value)
    if top >= 0 and len(used) < top + 1:
        _warn_sparse(csv_paths, used, top)
    return [str(i) for i in range(top + 1)] if top >= 0 else sorted(names)


def _warn_sparse(csv_paths: Sequence[str | Path], used: set[int], top: int) -> None:
    """Once per set of files: integer labels with gaps make classes that no sample has."""
    shown = ", ".join(map(str, sorted(used)[:8])) + (", ..." if len(used) > 8 else "")
    files = ", ".join(str(p) for p in csv_paths)
    msg = (f"{files}: integer labels {shown} ({len(used)} distinct) and no class list make {top + 1} classes, "
           f"{top + 1 - len(used)} of which no sample has (a {top + 1}-output model); to name the classes write a "
           f"class file (classes.txt: one name per line, line i = label i), or relabel the samples 0..{len(used) - 1}")
    if msg not in _warned:
        _warned.add(msg)
        log.warning(msg)


def read_labels_csv(
    csv_path: str | Path,
    root: str | Path | None = None,
    class_names: Sequence[str] | str | Path | None = None,
) -> tuple[list[tuple[Path, int]], list[str]]:
    """Read a labels file into ``(samples, class_names)``; ``samples`` are ``(path, label index)``.

    Args:
        csv_path: the labels file (see the module rules).
        root: folder of relative paths (default: ``csv_path``'s folder).
        class_names: the class list (label ``i`` is ``class_names[i]``), a path to a class file, or None
            (inferred from this file's labels with ``infer_class_names``).
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
    rows = list(iter_label_rows(csv_path))
    warn_paths_outside_root(csv_path, [(f"line {n}", p) for n, p, _ in rows], base)
    for lineno, path_token, token in rows:
        label = index.get(token)
        if label is None:
            label = _int(token)
            if label is None:
                shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
                hint = ("; several labels 'a;b' are read by multi-label video sets only (data.video.multi_label=true)"
                        if ";" in token else "")
                raise LabelsCSVError(f"{csv_path}:{lineno}: unknown class name {token!r}; expected one of the "
                                     f"{len(names)} classes ({shown}) or a class index{hint}")
            if not 0 <= label < len(names):
                raise LabelsCSVError(f"{csv_path}:{lineno}: label {label} out of range; expected a class index "
                                     f"in 0..{len(names) - 1} ({len(names)} classes) or a class name")
        path = Path(path_token).expanduser()
        samples.append((path if path.is_absolute() else base / path, label))
    if not samples:
        raise LabelsCSVError(f"{csv_path}: no samples; expected one {_FORMS} per line")
    return samples, names


MULTI_SEP = ";"


def read_multilabel_csv(
    csv_path: str | Path,
    root: str | Path | None = None,
    class_names: Sequence[str] | None = None,
) -> tuple[list[tuple[Path, list[int]]], list[str]]:
    """A multi-label file: the rules above, with the label field a ``;``-separated list of class names or indices
    (``clip.mp4 dog;ball`` or ``clip.mp4,3;7``). Returns ``([(path, [label indices])], class_names)``; without a
    class list, the classes are inferred from all the labels of the file as for single labels."""
    csv_path = Path(csv_path)
    base = Path(root) if root is not None else csv_path.parent
    rows = [(lineno, p, [t.strip() for t in token.split(MULTI_SEP) if t.strip()])
            for lineno, p, token in iter_label_rows(csv_path)]
    warn_paths_outside_root(csv_path, [(f"line {n}", p) for n, p, _ in rows], base)
    if class_names is None:
        tokens = [t for _, _, ts in rows for t in ts]
        ints = [_int(t) for t in tokens]
        if tokens and all(v is not None for v in ints):
            names = [str(i) for i in range(max(ints) + 1)]
        elif any(v is not None for v in ints):
            raise LabelsCSVError(f"{csv_path}: labels mix integers and class names; give a class list")
        else:
            names = sorted(set(tokens))
    else:
        names = [str(n) for n in class_names]
    index = {n: i for i, n in enumerate(names)}
    samples = []
    for lineno, path_token, tokens in rows:
        labels = []
        for token in tokens:
            label = index.get(token, _int(token))
            if label is None or not 0 <= label < len(names):
                raise LabelsCSVError(f"{csv_path}:{lineno}: label {token!r} is not one of the {len(names)} classes "
                                     f"or an index below {len(names)}")
            labels.append(label)
        if not labels:
            raise LabelsCSVError(f"{csv_path}:{lineno}: no label; expected 'path l1{MULTI_SEP}l2...'")
        samples.append((Path(path_token).expanduser() if Path(path_token).expanduser().is_absolute()
                        else base / path_token, sorted(set(labels))))
    return samples, names
