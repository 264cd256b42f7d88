#!/usr/bin/env python
"""Prepare Kinetics (400/600/700) for ``spatiotemporal``: resize, index, verify.

Input, one of:

- ``--layout annotations`` (default): the official annotation CSVs (``train.csv``, ``validate.csv`` or
  ``val.csv``, ``test.csv`` with columns ``label,youtube_id,time_start,time_end,split[,is_cc]``) in
  ``--annotations DIR``, and the downloaded clips anywhere under ``--src``, named
  ``{youtube_id}_{time_start:06d}_{time_end:06d}.{mp4,webm,mkv,...}`` (the CVDF / kinetics-dataset naming;
  flat or in class folders).
- ``--layout folders``: ``--src/{train,val,test}/<class name>/<video>`` (class per folder).

Output in ``--dst``: ``{train,val,test}/<name>.mp4`` resized with ffmpeg to short side ``--short-side``
(320; libx264, no audio, aspect kept), ``train.csv`` / ``val.csv`` / ``test.csv`` (``path label``, TimeSformer
format, label = index in ``classes.txt``), ``classes.txt`` (sorted class names from the training split),
and ``report.json`` + ``missing.txt`` / ``broken.txt`` listing clips absent from ``--src`` or that failed to
convert or to decode. ``--no-resize`` skips ffmpeg and indexes the source files in place (absolute paths).
Runs in parallel (``--workers``), resumes (existing outputs are kept after a decode check).

Example::

    python data_recipes/kinetics/prepare_kinetics.py --src ~/k400 --annotations ~/k400/annotations \\
        --dst ~/data/kinetics400 --workers 16
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

VIDEO_EXTS = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v")
SPLIT_FILES = {"train": ("train.csv",), "val": ("validate.csv", "val.csv", "valid.csv"), "test": ("test.csv",)}
SPLIT_DIRS = {"train": ("train",), "val": ("val", "validate", "valid", "validation"), "test": ("test",)}


@dataclass
class Clip:
    """One video of a split: its class name (None when unlabelled), source file (None when missing), id."""

    split: str
    label: str | None
    key: str
    source: Path | None


class FFmpegMissingError(RuntimeError):
    pass


def clip_key(youtube_id: str, time_start: str | float, time_end: str | float) -> str:
    """``{youtube_id}_{start:06d}_{end:06d}``, the file stem of a downloaded Kinetics clip."""
    return f"{youtube_id}_{int(float(time_start)):06d}_{int(float(time_end)):06d}"


def read_annotations(path: Path, split: str) -> list[tuple[str | None, str]]:
    """``[(label or None, clip key)]`` of an official annotation CSV (header row required)."""
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        need = {"youtube_id", "time_start", "time_end"}
        if reader.fieldnames is None or not need <= set(reader.fieldnames):
            raise ValueError(f"{path}:1: expected a header with {sorted(need | {'label'})}, got {reader.fieldnames}")
        for lineno, row in enumerate(reader, start=2):
            try:
                key = clip_key(row["youtube_id"], row["time_start"], row["time_end"])
            except (TypeError, ValueError) as e:
                raise ValueError(f"{path}:{lineno}: bad time_start/time_end ({e})") from None
            label = (row.get("label") or "").strip() or None
            rows.append((label, key))
    return rows


def index_videos(src: Path) -> dict[str, Path]:
    """Stem -> path of every video file under ``src`` (first one wins; sorted walk, deterministic)."""
    found: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if p.suffix.lower() in VIDEO_EXTS:
                found.setdefault(p.stem, p)
    return found


def clips_from_annotations(src: Path, annotations: Path) -> dict[str, list[Clip]]:
    videos = index_videos(src)
    out: dict[str, list[Clip]] = {}
    for split, names in SPLIT_FILES.items():
        path = next((annotations / n for n in names if (annotations / n).is_file()), None)
        if path is None:
            continue
        out[split] = [Clip(split, label, key, videos.get(key)) for label, key in read_annotations(path, split)]
    if "train" not in out:
        raise FileNotFoundError(f"no train.csv among the annotation files in {annotations}")
    return out


def clips_from_folders(src: Path) -> dict[str, list[Clip]]:
    out: dict[str, list[Clip]] = {}
    for split, names in SPLIT_DIRS.items():
        d = next((src / n for n in names if (src / n).is_dir()), None)
        if d is None:
            continue
        clips = []
        for class_dir in sorted(p for p in d.iterdir() if p.is_dir()):
            for video in sorted(class_dir.iterdir()):
                if video.suffix.lower() in VIDEO_EXTS:
                    clips.append(Clip(split, class_dir.name, _safe_name(f"{class_dir.name}__{video.stem}"), video))
        out[split] = clips
    if "train" not in out:
        raise FileNotFoundError(f"no train/ folder with class sub-folders in {src}")
    return out


def _safe_name(name: str) -> str:
    """A file stem without whitespace or separators (CSV paths must not contain spaces)."""
    return re.sub(r"[^\w.\-]+", "_", name).strip("_")


def class_list(clips: dict[str, list[Clip]]) -> list[str]:
    """Sorted class names of the training split."""
    return sorted({c.label for c in clips["train"] if c.label is not None})


def ffmpeg_command(ffmpeg: str, src: Path, dst: Path, short_side: int) -> list[str]:
    """Resize so that the short side is ``short_side`` (even long side), H.264, no audio."""
    scale = (f"scale='if(gt(iw,ih),-2,{short_side})':'if(gt(iw,ih),{short_side},-2)'")
    return [ffmpeg, "-y", "-loglevel", "error", "-i", str(src), "-vf", scale, "-c:v", "libx264",
            "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", "-an", str(dst)]


def check_video(path: Path) -> str | None:
    """None if the first and last frames decode (decord, else PyAV), else the reason."""
    from spatiotemporal.data.video import VideoDecodeError, read_clip

    try:
        read_clip(path, lambda n, fps: [0, n - 1], backend="auto")
    except VideoDecodeError as e:
        return e.reason
    return None


def _process(job: tuple[Path, Path | None, str | None, int, bool]) -> tuple[str, str | None]:
    """Convert (unless ``dst`` is None or already good) and verify one clip; returns (status, reason)."""
    src, dst, ffmpeg, short_side, verify = job
    target = dst if dst is not None else src
    if dst is not None and not (dst.exists() and check_video(dst) is None):
        tmp = dst.with_name(dst.stem + ".part" + dst.suffix)
        proc = subprocess.run(ffmpeg_command(ffmpeg, src, tmp, short_side), capture_output=True, text=True)
        if proc.returncode != 0 or not tmp.exists():
            tmp.unlink(missing_ok=True)
            return "broken", f"ffmpeg exit {proc.returncode}: {proc.stderr.strip()[-300:]}"
        os.replace(tmp, dst)
    if verify:
        reason = check_video(target)
        if reason is not None:
            return "broken", reason
    return "ok", None


def prepare(
    dst: Path,
    clips: dict[str, list[Clip]],
    resize: bool = True,
    short_side: int = 320,
    workers: int = 1,
    ffmpeg: str = "ffmpeg",
    verify: bool = True,
    log=print,
) -> dict:
    """Convert / verify all clips and write the CSVs, ``classes.txt`` and the report. Returns the report."""
    ffmpeg_path = None
    if resize:
        ffmpeg_path = shutil.which(ffmpeg)
        if ffmpeg_path is None:
            raise FFmpegMissingError(
                f"ffmpeg not found ({ffmpeg!r} is not on PATH): install it (e.g. `apt-get install ffmpeg` or "
                "`conda install -c conda-forge ffmpeg`), pass --ffmpeg /path/to/ffmpeg, or use --no-resize "
                "to index the videos as they are"
            )
    dst.mkdir(parents=True, exist_ok=True)
    classes = class_list(clips)
    index = {name: i for i, name in enumerate(classes)}
    (dst / "classes.txt").write_text("".join(f"{c}\n" for c in classes), encoding="utf-8")
    report: dict = {"classes": len(classes), "splits": {}, "missing": [], "broken": [], "unlabelled": []}
    for split, items in clips.items():
        todo: list[Clip] = []
        for c in items:
            if c.source is None:
                report["missing"].append(f"{split}/{c.key}")
            elif c.label is None or c.label not in index:
                report["unlabelled"].append(f"{split}/{c.key} ({c.label!r})")
            else:
                todo.append(c)
        if resize:
            (dst / split).mkdir(exist_ok=True)
        jobs = [(c.source, dst / split / f"{c.key}.mp4" if resize else None, ffmpeg_path, short_side, verify)
                for c in todo]
        if workers > 1 and len(jobs) > 1:
            with Pool(min(workers, len(jobs))) as pool:
                statuses = pool.map(_process, jobs, chunksize=max(1, min(8, len(jobs) // workers)))
        else:
            statuses = [_process(j) for j in jobs]
        lines = []
        for c, (status, reason) in zip(todo, statuses):
            if status != "ok":
                report["broken"].append(f"{split}/{c.key}: {reason}")
                continue
            path = f"{split}/{c.key}.mp4" if resize else str(c.source.resolve())
            sep = "," if " " in path or "," in path else " "
            path = '"' + path.replace('"', '""') + '"' if "," in path else path  # CSV quoting (data.labels_csv)
            lines.append(f"{path}{sep}{index[c.label]}\n")
        (dst / f"{split}.csv").write_text("".join(lines), encoding="utf-8")
        report["splits"][split] = {"listed": len(items), "written": len(lines)}
        log(f"{split}: {len(lines)}/{len(items)} clips written")
    for name in ("missing", "broken"):
        (dst / f"{name}.txt").write_text("".join(f"{x}\n" for x in report[name]), encoding="utf-8")
    (dst / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    log(f"{len(classes)} classes; {len(report['missing'])} missing, {len(report['broken'])} broken, "
        f"{len(report['unlabelled'])} unlabelled (see {dst}/report.json)")
    return report


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", type=Path, required=True, help="downloaded videos (searched recursively)")
    ap.add_argument("--dst", type=Path, required=True, help="output dataset root")
    ap.add_argument("--layout", choices=("annotations", "folders"), default="annotations")
    ap.add_argument("--annotations", type=Path, help="folder with train.csv / validate.csv / test.csv")
    ap.add_argument("--short-side", type=int, default=320)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--ffmpeg", default="ffmpeg", help="ffmpeg executable")
    ap.add_argument("--no-resize", action="store_true", help="index the source files as they are (no ffmpeg)")
    ap.add_argument("--no-verify", action="store_true", help="do not decode-check every output")
    args = ap.parse_args(argv)
    if args.layout == "annotations":
        if args.annotations is None:
            ap.error("--layout annotations needs --annotations DIR")
        clips = clips_from_annotations(args.src, args.annotations)
    else:
        clips = clips_from_folders(args.src)
    try:
        prepare(args.dst, clips, resize=not args.no_resize, short_side=args.short_side, workers=args.workers,
                ffmpeg=args.ffmpeg, verify=not args.no_verify)
    except FFmpegMissingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
