"""``spatio predict INPUT --checkpoint C``: top-k classes of a video or an image, or a label map of a volume.

The checkpoint's modality decides what INPUT must be and how it is preprocessed (its stored recipe). Several
``--checkpoint`` (volumes): an ensemble, the models' probabilities averaged.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..engine import resolve_device
from ..models import load_pretrained
from ..pipelines import pipeline_for, pipeline_for_input
from ..pipelines.ensemble import check_ensemble
from ..utils.errors import UserInputError


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="predict a video/image (top-k classes) or a volume (label-map NIfTI)")
    p.add_argument("input", help="a video file, an image, or a NIfTI volume")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="preprocessing overrides (data.*)")
    p.add_argument("--checkpoint", required=True, action="append", metavar="C",
                   help="the trained model; repeated (volumes): an ensemble averaging the models' probabilities")
    p.add_argument("--out", help="volumes: output label map (.nii.gz); default INPUT_pred.nii.gz")
    p.add_argument("--classes", help="class-name file (one per line) when the checkpoint has none")
    p.add_argument("--topk", type=int, default=5)
    p.add_argument("--overlap", type=float, help="volumes: sliding-window overlap (the recipe's data.overlap)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def run(args) -> int:
    if Path(args.input).is_dir():
        raise IsADirectoryError(f"{args.input} is a folder; predict takes one file (a video, an image or a NIfTI "
                                f"volume)")
    if not Path(args.input).is_file():
        raise FileNotFoundError(f"input not found: {args.input}")
    if args.topk < 1:
        raise UserInputError(f"--topk must be >= 1, got {args.topk}")
    device = resolve_device(args.device)
    checkpoints = args.checkpoint
    models = [load_pretrained(c).to(device) for c in checkpoints]
    pipeline = pipeline_for(models[0])
    if not pipeline.accepts(args.input):
        other = pipeline_for_input(args.input)
        kind = f"looks like an {other.modality} file" if other else "is not a file type it reads"
        kind = kind.replace("an video", "a video").replace("an volume", "a volume")
        article = "an" if pipeline.modality.startswith("i") else "a"
        raise UserInputError(f"{args.input} {kind}, but {checkpoints[0]} is {article} {pipeline.modality} model "
                             f"(it takes {', '.join(pipeline.suffixes)})")
    check_ensemble(pipeline, models, checkpoints)
    overlap = [f"data.overlap={args.overlap}"] if args.overlap is not None else []
    recipe = pipeline.recipe_from_checkpoint(models[0], list(args.overrides) + overlap, checkpoints[0])
    result = pipeline.predict(models[0] if len(models) == 1 else models, recipe, args.input, device, out=args.out,
                              topk=args.topk, classes_file=args.classes)
    if args.json:
        print(json.dumps(result, indent=2))
    elif "top" in result:
        for r in result["top"]:
            print(f"{r['probability']:.4f}  {r['class']}")
    if "out" in result and not args.json:
        print(f"wrote {result['out']} (shape {tuple(result['shape'])}, labels {result['labels']})")
    return 0
