"""``spatio eval timesformer --checkpoint C [--data ...]``: metrics on a split, printed and written to JSON."""

from __future__ import annotations

import json
from pathlib import Path

from ..engine import resolve_device
from ..models import load_pretrained
from .recipes.common import find_config
from .recipes.run_dir import recipe_for_checkpoint
from .train_cmd import DEFAULT_RECIPES


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint (top-1/top-5 or Dice), write JSON")
    esub = p.add_subparsers(dest="model_kind", required=True, metavar="MODEL")
    for kind in ("timesformer", "unetr", "vit"):
        q = esub.add_parser(kind, help=f"evaluate a {kind} checkpoint")
        q.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides (data.*)")
        q.add_argument("--checkpoint", required=True)
        q.add_argument("--data", help="dataset (default: the run's, else built-in)")
        q.add_argument("--data-root")
        q.add_argument("--split", default=None, help="split to evaluate (default: test for video, val otherwise)")
        q.add_argument("--batch-size", type=int, default=4)
        q.add_argument("--device", default="auto")
        q.add_argument("--workers", type=int, default=2)
        q.add_argument("--json", dest="json_out", help="output JSON (default: beside the checkpoint)")
        q.set_defaults(func=run)


def _recipe(args, schema):
    data = args.data or "builtin"
    over = list(args.overrides)
    if args.data:
        over.append(f"data.dataset={args.data}")
    if args.data_root:
        over.append(f"data.root={args.data_root}")
    default = find_config(DEFAULT_RECIPES[(args.model_kind, data)])
    return recipe_for_checkpoint(schema, args.checkpoint, default, over)


def run(args) -> int:
    device = resolve_device(args.device)
    model = load_pretrained(args.checkpoint).to(device)
    if args.model_kind == "timesformer":
        from .recipes.video import VideoRecipe, evaluate_video

        metrics = evaluate_video(_recipe(args, VideoRecipe), model, args.split or "test", args.batch_size,
                                 args.workers, device)
    elif args.model_kind == "unetr":
        from .recipes.volume import VolumeRecipe, evaluate_volume

        metrics = evaluate_volume(_recipe(args, VolumeRecipe), model, args.split or "validation", device)
    else:
        from .recipes.image import ImageRecipe, evaluate_image

        metrics = evaluate_image(_recipe(args, ImageRecipe), model, args.split or "val", args.batch_size,
                                 args.workers, device)
    out = Path(args.json_out) if args.json_out else Path(args.checkpoint).with_name(
        f"eval_{Path(args.checkpoint).stem}_{metrics['split']}.json")
    out.write_text(json.dumps(metrics, indent=2))
    print(json.dumps(metrics, indent=2))
    print(f"wrote {out}")
    return 0


