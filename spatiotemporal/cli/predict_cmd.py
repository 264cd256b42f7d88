"""``spatio predict INPUT --checkpoint C``: top-5 classes of a video or image, or a NIfTI label map of a volume."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..engine import resolve_device
from ..models import load_pretrained
from ..models.pretrained import read_checkpoint
from .recipes.common import find_config
from .recipes.run_dir import recipe_for_checkpoint
from .train_cmd import DEFAULT_RECIPES


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="predict a video/image (top-5 classes) or a volume (label-map NIfTI)")
    p.add_argument("input", help="a video file, an image, or a NIfTI volume")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", help="volumes: output label map (.nii.gz); default INPUT_pred.nii.gz")
    p.add_argument("--classes", help="class-name file (one per line) when the checkpoint has none")
    p.add_argument("--topk", type=int, default=5)
    p.add_argument("--json", action="store_true", help="print the classes as JSON")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def class_names(checkpoint: str, classes_file: str | None, n: int) -> list[str]:
    if classes_file:
        names = [ln.strip() for ln in Path(classes_file).read_text().splitlines() if ln.strip()]
    else:
        obj, _, _ = read_checkpoint(checkpoint)
        task = obj.get("task") if isinstance(obj, dict) else None
        names = list(task.get("class_names", [])) if isinstance(task, dict) else []
    if names and len(names) != n:
        raise ValueError(f"{len(names)} class names for a model with {n} outputs")
    return names or [str(i) for i in range(n)]


def _recipe(kind: str, checkpoint: str, schema):
    return recipe_for_checkpoint(schema, checkpoint, find_config(DEFAULT_RECIPES[(kind, "builtin")]), [])


def _print_topk(args, logits: torch.Tensor, names: list[str]) -> None:
    probs = logits.float().softmax(-1)
    top = probs.topk(min(args.topk, probs.numel()))
    rows = [{"class": names[i], "index": int(i), "probability": float(p)} for p, i in zip(top.values, top.indices)]
    if args.json:
        print(json.dumps({"input": args.input, "top": rows}, indent=2))
        return
    for r in rows:
        print(f"{r['probability']:.4f}  {r['class']}")


@torch.inference_mode()
def run(args) -> int:
    if not Path(args.input).exists():
        raise FileNotFoundError(f"input not found: {args.input}")
    device = resolve_device(args.device)
    model = load_pretrained(args.checkpoint).to(device)
    arch = model.arch
    if arch == "unetr":
        from ..data.volume import save_label_map
        from .recipes.volume import VolumeRecipe, predict_volume

        labels = predict_volume(_recipe("unetr", args.checkpoint, VolumeRecipe), model, args.input, device)
        name = Path(args.input).name.removesuffix(".gz").removesuffix(".nii")
        out = Path(args.out) if args.out else Path(args.input).with_name(f"{name}_pred.nii.gz")
        save_label_map(labels, args.input, out)
        print(f"wrote {out} (shape {labels.shape}, labels {sorted(set(labels.flatten().tolist()))})")
        return 0
    names = class_names(args.checkpoint, args.classes, model.cfg.num_classes)
    if arch == "timesformer":
        from ..data.video import load_test_views
        from .recipes.video import VideoRecipe

        v = _recipe("timesformer", args.checkpoint, VideoRecipe).data.video
        v.mean, v.std, v.num_frames = tuple(model.cfg.mean), tuple(model.cfg.std), model.cfg.num_frames
        views = load_test_views(args.input, v).to(device)  # (V, C, T, S, S)
        logits = model(views).mean(0)
    else:
        from ..data.image import eval_transform, load_rgb
        from .recipes.image import ImageRecipe

        cfg = _recipe("vit", args.checkpoint, ImageRecipe).data.image
        cfg.img_size = model.cfg.img_size
        logits = model(eval_transform(cfg)(load_rgb(args.input))[None].to(device))[0]
    _print_topk(args, logits, names)
    return 0
