"""``spatio embed``: one feature vector per item of a dataset split, written to ``embeddings.safetensors`` (or
``embeddings.npy``) + ``index.csv`` + ``meta.json`` in an output folder, resumable.

Work is done in chunks of items; each finished chunk is written atomically to ``parts/`` with the settings in
``meta.json``, so an interrupted run continues at the first missing chunk (same settings required). Unreadable
items are skipped, counted and listed in ``meta.json``; they have no row.

The outputs are meant for sharing: ``meta.json`` holds the model spec (``models.checkpoint_io.model_spec``: arch,
config, preprocessing spec, class names, metrics) and the checkpoint's file name, never its folder; ``index.csv``
names the items relative to the folder they share.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save
from torch import nn
from tqdm.auto import tqdm

from ..models.checkpoint_io import model_spec
from ..models.preprocessing import path_like
from ..utils.atomic import atomic_write, atomic_write_text
from ..utils.errors import UserInputError
from ..utils.run_lock import LOCK_NAME
from .samples import DatasetItems

POOLS = ("default", "cls", "mean")
FORMATS = ("safetensors", "npy")


def check_settings(model: nn.Module, layer: int | str | None, pool: str, fmt: str = FORMATS[0], batch_size: int = 1,
                   chunk: int = 1) -> None:
    """Refuse, before anything is written, the settings ``model`` cannot be embedded with: a
    :class:`UserInputError` naming the flag and what was expected."""
    if pool not in POOLS:
        raise UserInputError(f"--pool must be one of {POOLS}, got {pool!r}")
    if fmt not in FORMATS:
        raise UserInputError(f"--format must be one of {FORMATS}, got {fmt!r}")
    for flag, value in (("--batch-size", batch_size), ("--chunk", chunk)):
        if value < 1:
            raise UserInputError(f"{flag} must be >= 1, got {value}")
    if layer is not None or pool != "default":
        layer_name(model, layer, pool)
        if pool == "cls" and not model.num_prefix:
            own = getattr(getattr(model, "cfg", None), "global_pool", None)
            raise UserInputError(f"--pool cls: the encoder blocks of {type(model).__name__} carry no class token; "
                                 "expected --pool mean (the mean of the grid tokens) or --pool default (the model's "
                                 f"own pooling{f', global_pool={own}' if own else ''})")


def layer_name(model: nn.Module, layer: int | str | None, pool: str = "default") -> str:
    """The level of ``model.forward_intermediates`` that ``--layer`` names (default: the last one): a name of
    ``model.intermediate_names()`` (``blocks.3``, ``stage2``) or ``model.inner_intermediate_names()`` (``stage2.1``),
    or a block index of a flat model (negative from the end). Anything else is a :class:`UserInputError` listing
    the valid names."""
    names = list(model.intermediate_names()) if callable(getattr(model, "intermediate_names", None)) else []
    flag = f"--layer {layer}" if layer is not None else f"--pool {pool}"
    if not names:
        raise UserInputError(f"{flag}: {type(model).__name__} has no encoder blocks or stages; embed it with its own "
                             "pooling (no --layer, --pool default)")
    if layer is None:
        return names[-1]
    if isinstance(layer, int) or str(layer).lstrip("-").isdigit():
        blocks = [n for n in names if n.startswith("blocks.")]
        if not blocks:
            raise UserInputError(f"{flag}: {type(model).__name__} has stages, not one stack of blocks; expected one "
                                 f"of {', '.join(names)}")
        if not -len(blocks) <= int(layer) < len(blocks):
            raise UserInputError(f"{flag}: the model has {len(blocks)} blocks (0..{len(blocks) - 1}, or negative)")
        return blocks[int(layer)]
    inner = list(getattr(model, "inner_intermediate_names", list)())
    if layer not in names and layer not in inner:
        also = " (or a block index)" if names[0].startswith("blocks.") else \
            f" (or stage.block such as {inner[0]})" if inner else ""
        raise UserInputError(f"{flag}: {type(model).__name__} has no such level; expected one of {', '.join(names)}"
                             f"{also}")
    return str(layer)


def pooled_features(model: nn.Module, x: torch.Tensor, layer: int | str | None = None, pool: str = "default"
                    ) -> torch.Tensor:
    """``x (B, ...) -> (B, D)``. ``layer`` None and ``pool`` ``default``: ``model.forward_features`` (the model's own
    embedding: normed class token, or normed mean). Otherwise the level :func:`layer_name` names (an encoder block
    or a stage, before the final norm; ``model.forward_intermediates``), pooled by its class token (``cls``) or the
    mean of its grid tokens (``mean``; ``default``: ``cls`` when the level carries a class token). Framewise models
    average their per-frame class tokens."""
    check_settings(model, layer, pool)
    if layer is None and pool == "default":
        return model.forward_features(x)
    (level,) = model.forward_intermediates(x, indices=[layer_name(model, layer, pool)])
    pool = ("cls" if level.prefix.shape[1] else "mean") if pool == "default" else pool
    return level.prefix[:, 0] if pool == "cls" else level.tokens.mean(1)


def _meta_matches(old: dict, new: dict) -> bool:
    """``old`` (read back from ``meta.json``) against the settings of this run, compared as JSON (tuples are lists)."""
    keys = ("source", "split", "layer", "pool", "num_items", "chunk", "data", "spec")
    new = json.loads(json.dumps({k: new.get(k) for k in keys}))
    return all(old.get(k) == new[k] for k in keys)


@torch.no_grad()
def write_embeddings(model: nn.Module, items: DatasetItems, out_dir: str | Path, settings: dict,
                     layer: int | str | None = None, pool: str = "default", fmt: str = "safetensors",
                     batch_size: int = 8, chunk: int = 256, device: str | torch.device = "cpu",
                     progress: bool = True) -> dict:
    """Embed every item of ``items`` into ``out_dir`` (see the module docstring); ``settings`` (source, split,
    data...) go into ``meta.json`` and must match to resume; ``settings["preprocessing"]`` (the pipeline's
    preprocessing spec of the items) goes into the model spec ``meta.json`` holds. A path-like ``source`` is
    written as its file name (the full one is kept in ``parts/`` to match a resume). Returns the final ``meta.json``
    content."""
    check_settings(model, layer, pool, fmt, batch_size, chunk)
    out = Path(out_dir)
    parts = out / "parts"
    settings = dict(settings)
    full_source = str(settings.get("source", ""))
    prep = settings.pop("preprocessing", None)
    meta = {**settings, "source": Path(full_source).name if path_like(full_source) else full_source,
            "spec": model_spec(model, preprocessing=prep), "layer": layer, "pool": pool, "num_items": len(items),
            "chunk": chunk, "kind": items.kind, "data_description": items.description,
            "class_names": items.class_names}
    meta_path = out / "meta.json"
    if out.is_file():
        raise UserInputError(f"--out {out}: is a file; expected a new or empty folder (or an unfinished "
                             "spatio embed output)")
    if meta_path.is_file():
        old = _read_meta(meta_path)
        if old.get("complete"):
            raise FileExistsError(f"{out}: holds finished embeddings ({old.get('source')}); choose another --out")
        held = parts / "source.txt"
        if not _meta_matches(old, meta) or (held.is_file() and held.read_text(encoding="utf-8") != full_source):
            raise FileExistsError(f"{meta_path}: an unfinished run with other settings ({old.get('source')}, "
                                  f"layer {old.get('layer')}, pool {old.get('pool')}); choose another --out")
    elif out.is_dir() and any(p.name != LOCK_NAME for p in out.iterdir()):
        held = sorted(p.name for p in out.iterdir() if p.name != LOCK_NAME)
        raise UserInputError(f"--out {out}: a folder that is not empty ({', '.join(held[:3])}"
                             f"{', ...' if len(held) > 3 else ''}) and not a spatio embed output (no meta.json); "
                             "choose a new or empty folder")
    parts.mkdir(parents=True, exist_ok=True)
    atomic_write_text(parts / "source.txt", full_source)
    atomic_write_text(meta_path, json.dumps(meta, indent=2))
    model.eval()
    n_chunks = (len(items) + chunk - 1) // chunk
    done = {int(p.stem.split("-")[1]) for p in parts.glob("part-*.safetensors")}
    bar = tqdm(total=len(items), initial=min(len(done) * chunk, len(items)), desc="embed", unit="item",
               disable=not progress)
    for c in range(n_chunks):
        if c in done:
            continue
        arrays = _embed_chunk(model, items, range(c * chunk, min((c + 1) * chunk, len(items))), layer, pool,
                              batch_size, device, bar)
        atomic_write(parts / f"part-{c:05d}.safetensors", lambda f, a=arrays: f.write(save(a)))
    bar.close()
    return _finish(out, items, meta, n_chunks, fmt)


def _embed_chunk(model: nn.Module, items: DatasetItems, indices: range, layer: int | str | None, pool: str,
                 batch_size: int, device, bar) -> dict[str, np.ndarray]:
    """Features of the readable items among ``indices``: ``rows``, ``labels``, ``features (n, D)``, ``skipped``."""
    rows, labels, feats, skipped, xs = [], [], [], [], []
    for pos, i in enumerate(indices):
        item = items.get(i)
        bar.update(1)
        if item is None:
            skipped.append(i)
        else:
            xs.append(item[0])
            rows.append(i)
            labels.append(int(item[1]))
        if xs and (len(xs) == batch_size or pos == len(indices) - 1):
            x = torch.stack(xs).to(device, torch.float32)
            feats.append(pooled_features(model, x, layer, pool).float().cpu().numpy())
            xs = []
    return {"rows": np.asarray(rows, dtype=np.int64), "labels": np.asarray(labels, dtype=np.int64),
            "skipped": np.asarray(skipped, dtype=np.int64),
            "features": np.concatenate(feats).astype(np.float32) if feats else np.zeros((0, 0), np.float32)}


def _finish(out: Path, items: DatasetItems, meta: dict, n_chunks: int, fmt: str) -> dict:
    loaded = [load_file(str(out / "parts" / f"part-{c:05d}.safetensors")) for c in range(n_chunks)]
    feats = [p["features"] for p in loaded if p["features"].size]
    if not feats:
        raise UserInputError(f"no readable item in {items.description}: nothing to embed")
    features = np.concatenate(feats)
    rows = np.concatenate([p["rows"] for p in loaded])
    labels = np.concatenate([p["labels"] for p in loaded])
    ids = shareable_ids(items.ids)
    skipped = [ids[int(i)] for p in loaded for i in p["skipped"]]
    if fmt == "safetensors":
        atomic_write(out / "embeddings.safetensors", lambda f: f.write(save({"features": features, "labels": labels},
                                                                            metadata={"index": "index.csv"})))
    else:
        buf = io.BytesIO()
        np.save(buf, features)
        atomic_write(out / "embeddings.npy", lambda f: f.write(buf.getvalue()))
    text = io.StringIO()
    w = csv.writer(text)
    w.writerow(["row", "id", "label", "class"])
    for r, (i, y) in enumerate(zip(rows.tolist(), labels.tolist())):
        name = items.class_names[y] if 0 <= y < len(items.class_names) else str(y)
        w.writerow([r, ids[i], y, name])
    atomic_write_text(out / "index.csv", text.getvalue())
    meta.update(complete=True, format=fmt, num_rows=int(len(rows)), dim=int(features.shape[1]),
                skipped=len(skipped), skipped_ids=skipped[:50])
    atomic_write_text(out / "meta.json", json.dumps(meta, indent=2))
    shutil.rmtree(out / "parts", ignore_errors=True)
    return meta


def shareable_ids(ids: list[str]) -> list[str]:
    """Item ids without the machine's folders: absolute paths relative to the folder they all share (e.g.
    ``class_a/x.mp4``); other ids as they are."""
    if not ids or not all(os.path.isabs(i) for i in ids):
        return list(ids)
    base = os.path.commonpath([os.path.dirname(i) for i in ids])
    return [os.path.relpath(i, base) for i in ids]


def read_embeddings(path: str | Path) -> tuple[np.ndarray, np.ndarray, list[str], dict]:
    """The output of ``spatio embed`` (its folder, or a file in it) -> ``(features (N, D), labels (N,),
    class_names, meta)``."""
    folder = Path(path)
    folder = folder if folder.is_dir() else folder.parent
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{folder}: no meta.json; expected the output folder of spatio embed")
    meta = _read_meta(meta_path)
    if not meta.get("complete"):
        raise UserInputError(f"{folder}: unfinished embeddings; run the same spatio embed command again to finish "
                             "them")
    if meta["format"] == "safetensors":
        arrays = load_file(str(folder / "embeddings.safetensors"))
        features, labels = arrays["features"], arrays["labels"]
    else:
        features = np.load(folder / "embeddings.npy")
        with open(folder / "index.csv", newline="") as f:
            labels = np.asarray([int(r["label"]) for r in csv.DictReader(f)], dtype=np.int64)
    return features, labels, list(meta.get("class_names") or []), meta


def _read_meta(path: Path) -> dict:
    """``meta.json`` of an embed folder; one that is not a JSON object is a :class:`UserInputError`."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise UserInputError(f"{path}: not valid JSON ({e}); expected the meta.json spatio embed writes") from None
    if not isinstance(meta, dict):
        raise UserInputError(f"{path}: expected a JSON object (the meta.json spatio embed writes)")
    return meta
