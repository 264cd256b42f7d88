#!/usr/bin/env python
"""Turn the BTCV / Synapse "Abdomen" RawData (zip or extracted folder) into the decathlon layout.

    python data_recipes/btcv/prepare_btcv.py --src ~/Downloads/RawData.zip --out ~/data/btcv
    python data_recipes/btcv/prepare_btcv.py --src ~/Downloads/RawData --out ~/data/btcv --mode symlink

Reads ``Training/img/img00XX.nii.gz`` + ``Training/label/label00XX.nii.gz`` (and ``Testing/img/`` if present),
writes ``imagesTr/img00XX.nii.gz``, ``labelsTr/label00XX.nii.gz``, ``imagesTs/`` and ``dataset_0.json`` with the
standard UNETR split (training img0001-0010 + img0021-0034, validation img0035-0040) and the 14-class label
map, then checks every case (same grid, labels in 0..13) so a training run never starts on broken data.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import zipfile
from pathlib import Path

from spatiotemporal.data.volume import VolumeDataError, load_volume_datalist, validate_datalist, write_datalist

TRAIN_IDS = [*range(1, 11), *range(21, 35)]
VAL_IDS = list(range(35, 41))
BTCV_CLASS_NAMES = ["background", "spleen", "rkid", "lkid", "gall", "eso", "liver", "sto", "aorta", "IVC",
                    "veins", "pancreas", "rad", "lad"]
_PATTERNS = {  # (folder in the archive, file prefix) -> output folder
    ("Training/img", "img"): "imagesTr",
    ("Training/label", "label"): "labelsTr",
    ("Testing/img", "img"): "imagesTs",
}


def _classify(rel: str) -> tuple[str, int] | None:
    """``.../Training/img/img0001.nii.gz`` -> ``("imagesTr", 1)``; other paths -> None."""
    rel = rel.replace("\\", "/")
    for (folder, prefix), out in _PATTERNS.items():
        m = re.search(rf"(?:^|/){folder}/{prefix}(\d{{4}})\.nii\.gz$", rel)
        if m:
            return out, int(m.group(1))
    return None


def _out_name(out_dir: str, case: int) -> str:
    return f"{'label' if out_dir == 'labelsTr' else 'img'}{case:04d}.nii.gz"


def _collect_dir(src: Path) -> dict[tuple[str, int], Path]:
    found: dict[tuple[str, int], Path] = {}
    for p in sorted(src.rglob("*.nii.gz")):
        key = _classify(p.relative_to(src).as_posix())
        if key:
            found.setdefault(key, p)
    return found


def _place(src: Path, dst: Path, mode: str) -> None:
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    if mode == "symlink":
        os.symlink(src.resolve(), dst)
    elif mode == "hardlink":
        os.link(src, dst)
    else:
        shutil.copy2(src, dst)


def _check_complete(found: set[tuple[str, int]], src: Path) -> None:
    missing = [f"{sub}/{_out_name(sub, i)}" for i in TRAIN_IDS + VAL_IDS for sub in ("imagesTr", "labelsTr")
               if (sub, i) not in found]
    if missing:
        raise VolumeDataError(f"{src}: {len(missing)} file(s) of the 30 BTCV training cases are missing "
                              f"(expected Training/img/img00XX.nii.gz and Training/label/label00XX.nii.gz for "
                              f"XX in 01-10, 21-40): {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")


def prepare_btcv(src: str | Path, out: str | Path, mode: str = "copy", validate: bool = True) -> Path:
    """Build the decathlon layout in ``out`` from the archive or folder ``src``; returns the JSON path."""
    src, out = Path(src).expanduser(), Path(out).expanduser()
    if not src.exists():
        raise VolumeDataError(f"{src} does not exist (expected RawData.zip or its extracted folder)")
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    placed: set[tuple[str, int]] = set()
    if src.is_file() and zipfile.is_zipfile(src):
        with zipfile.ZipFile(src) as zf:
            members = {k: n for n in zf.namelist() if (k := _classify(n))}
            _check_complete(set(members), src)
            for (sub, i), name in sorted(members.items()):
                with zf.open(name) as fin, open(out / sub / _out_name(sub, i), "wb") as fout:
                    shutil.copyfileobj(fin, fout, 1 << 20)
                placed.add((sub, i))
    elif src.is_dir():
        files = _collect_dir(src)
        _check_complete(set(files), src)
        for (sub, i), path in sorted(files.items()):
            _place(path, out / sub / _out_name(sub, i), mode)
            placed.add((sub, i))
    else:
        raise VolumeDataError(f"{src} is neither a zip archive nor a folder")

    def entry(i: int) -> dict[str, str]:
        return {"image": f"imagesTr/{_out_name('imagesTr', i)}", "label": f"labelsTr/{_out_name('labelsTr', i)}"}

    test = [f"imagesTs/{_out_name('imagesTs', i)}" for sub, i in sorted(placed) if sub == "imagesTs"]
    json_path = write_datalist(
        out, [entry(i) for i in TRAIN_IDS], [entry(i) for i in VAL_IDS], BTCV_CLASS_NAMES,
        description="btcv yucheng", licence="yt", modality={"0": "CT"}, name="btcv", numTest=len(test),
        reference="Vanderbilt University", release="1.0 06/08/2015", test=test)
    if validate:
        dl = load_volume_datalist(out, json_path.name)
        validate_datalist(dl.training, dl.class_names, where=f"{json_path}: training")
        validate_datalist(dl.validation, dl.class_names, where=f"{json_path}: validation")
    return json_path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", required=True, help="RawData.zip or the folder it was extracted to")
    ap.add_argument("--out", required=True, help="output dataset root (imagesTr/, labelsTr/, dataset_0.json)")
    ap.add_argument("--mode", choices=("copy", "symlink", "hardlink"), default="copy",
                    help="how to place files when --src is a folder (default: copy)")
    ap.add_argument("--no-validate", action="store_true", help="skip the per-case checks")
    args = ap.parse_args(argv)
    try:
        json_path = prepare_btcv(args.src, args.out, args.mode, validate=not args.no_validate)
    except VolumeDataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {json_path} (24 training / 6 validation cases, 14 classes)")
    print(f"train with: spatio train unetr --data btcv --data-root {json_path.parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
