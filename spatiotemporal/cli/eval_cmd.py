"""``spatio eval [NAME] --checkpoint C``: metrics on a split, printed and written to JSON.

The checkpoint says what it is and how it was trained; NAME (optional) is only checked against it.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..engine import atomic_write_text, resolve_device
from ..models import load_pretrained
from ..pipelines import pipeline_for
from .common import check_family, data_flags, split_words


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint (top-1/top-5, or Dice per class), write JSON")
    p.add_argument("words", nargs="*", metavar="[NAME] KEY=VALUE",
                   help="optional model family to check, then data overrides (e.g. data.video.sampling_rate=4)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", help="dataset (default: the one the checkpoint was trained on)")
    p.add_argument("--data-root")
    p.add_argument("--data-file", action="append", metavar="FILE", help="the file of --data-root that lists the "
                   "samples: volumes NAME (the dataset JSON); videos SPLIT=FILE (repeatable)")
    p.add_argument("--split", default=None,
                   help="split to evaluate (default: test for videos, val for images and volumes)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--overlap", type=float, help="volumes: sliding-window overlap (the recipe's data.overlap)")
    p.add_argument("--device", default="auto")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--json", dest="json_out", help="output JSON (default: beside the checkpoint)")
    p.set_defaults(func=run)


def run(args) -> int:
    name, overrides = split_words(args.words)
    device = resolve_device(args.device)
    model = load_pretrained(args.checkpoint).to(device)
    check_family(name, model)
    pipeline = pipeline_for(model)
    overlap = [f"data.overlap={args.overlap}"] if args.overlap is not None else []
    files = [o for spec in args.data_file or [] for o in pipeline.data_file_overrides(spec)]
    recipe = pipeline.recipe_from_checkpoint(model, overrides + data_flags(args) + overlap + files, args.checkpoint)
    metrics = pipeline.evaluate(model, recipe, args.split, args.batch_size, args.workers, device)
    out = Path(args.json_out) if args.json_out else Path(args.checkpoint).with_name(
        f"eval_{Path(args.checkpoint).stem}_{metrics['split']}.json")
    atomic_write_text(out, json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))
    print(f"wrote {out}")
    return 0
