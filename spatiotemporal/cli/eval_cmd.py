"""``spatio eval [NAME] --checkpoint C``: metrics on a split, printed and written to JSON.

The checkpoint says what it is and how it was trained; NAME (optional) is only checked against it. Several
``--checkpoint`` (volumes): each model's metrics (with the fold its run validated on) and their ensemble's.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..engine import atomic_write_text, resolve_device
from ..models import load_pretrained
from ..pipelines import pipeline_for
from ..pipelines.ensemble import check_ensemble, stored_fold
from .common import check_family, data_flags, split_words


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint (top-1/top-5, or Dice per class), write JSON")
    p.add_argument("words", nargs="*", metavar="[NAME] KEY=VALUE",
                   help="optional model family to check, then data overrides (e.g. data.video.sampling_rate=4)")
    p.add_argument("--checkpoint", required=True, action="append", metavar="C",
                   help="the trained model; repeated (volumes): each model's metrics and their ensemble's")
    p.add_argument("--data", help="dataset (default: the one the checkpoint was trained on)")
    p.add_argument("--data-root")
    p.add_argument("--data-file", action="append", metavar="FILE", help="the file of --data-root that lists the "
                   "samples: volumes NAME (the dataset JSON); videos SPLIT=FILE (repeatable)")
    p.add_argument("--split", default=None,
                   help="split to evaluate (default: test for videos, val for images and volumes; volumes: fold, the "
                   "validation cases of the checkpoint's fold run)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--overlap", type=float, help="volumes: sliding-window overlap (the recipe's data.overlap)")
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", dest="json_out", help="output JSON (default: beside the checkpoint)")
    p.set_defaults(func=run)


def run(args) -> int:
    name, overrides = split_words(args.words)
    device = resolve_device(args.device)
    checkpoints = args.checkpoint
    models = [load_pretrained(c).to(device) for c in checkpoints]
    for model in models:
        check_family(name, model)
    pipeline = pipeline_for(models[0])
    check_ensemble(pipeline, models, checkpoints)
    overlap = [f"data.overlap={args.overlap}"] if args.overlap is not None else []
    files = [o for spec in args.data_file or [] for o in pipeline.data_file_overrides(spec)]
    recipe = pipeline.recipe_from_checkpoint(models[0], overrides + data_flags(args) + overlap + files, checkpoints[0])
    if len(models) == 1:
        metrics = pipeline.evaluate(models[0], recipe, args.split, args.batch_size, args.workers, device)
        fold = stored_fold(checkpoints[0])
        metrics = {**metrics, "fold": fold} if fold else metrics
    else:
        metrics = pipeline.evaluate_ensemble(models, checkpoints, recipe, args.split, device)
    kind = "" if len(models) == 1 else f"ensemble{len(models)}_"
    out = Path(args.json_out) if args.json_out else Path(checkpoints[0]).with_name(
        f"eval_{kind}{Path(checkpoints[0]).stem}_{metrics['split']}.json")
    atomic_write_text(out, json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))
    print(f"wrote {out}")
    return 0
