"""``spatio train {timesformer,unetr,vit}``: train on the built-in data or a real dataset."""

from __future__ import annotations

import json

from .recipes.common import load_recipe

DEFAULT_RECIPES = {
    ("timesformer", "builtin"): "timesformer_tiny_builtin",
    ("timesformer", "kinetics"): "timesformer_base_k400",
    ("unetr", "builtin"): "unetr_tiny_builtin",
    ("unetr", "btcv"): "unetr_btcv",
    ("vit", "builtin"): "vit_tiny_builtin",
    ("vit", "imagenet"): "deit3_vit_s_in1k",
}


def _common_flags(p) -> None:
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides, e.g. train.optim.lr=0.01")
    p.add_argument("--config", help="recipe YAML (path or name in configs/); default depends on --data")
    p.add_argument("--data", help="dataset (default: the built-in one)")
    p.add_argument("--data-root", help="dataset directory")
    p.add_argument("--out", help="run directory")
    p.add_argument("--epochs", type=int)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--seed", type=int)
    p.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    p.add_argument("--init", help="initial weights: any checkpoint load_pretrained reads (2D ViTs are inflated)")
    p.add_argument("--workers", type=int, help="data-loader workers per process")


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model (built-in data by default)")
    tsub = p.add_subparsers(dest="model_kind", required=True, metavar="MODEL")
    for kind in ("timesformer", "unetr", "vit"):
        q = tsub.add_parser(kind, help=f"train {kind}")
        _common_flags(q)
        q.set_defaults(func=run)


def flag_overrides(args) -> list[str]:
    out = []
    if args.data:
        out.append(f"data.dataset={args.data}")
    if args.data_root:
        out.append(f"data.root={args.data_root}")
    for flag, key in (("out", "train.out"), ("epochs", "train.epochs"), ("max_steps", "train.max_steps"),
                      ("batch_size", "train.batch_size"), ("device", "train.device"), ("seed", "train.seed"),
                      ("init", "train.init"), ("workers", "train.num_workers")):
        val = getattr(args, flag)
        if val is not None:
            out.append(f"{key}={val}")
    if args.resume:
        out.append("train.resume=true")
    return out


def run(args) -> int:
    data = args.data or "builtin"
    config = args.config or DEFAULT_RECIPES.get((args.model_kind, data))
    if config is None:
        valid = sorted(d for k, d in DEFAULT_RECIPES if k == args.model_kind)
        raise ValueError(f"--data {data!r} is not known for {args.model_kind}; valid: {', '.join(valid)}")
    overrides = list(args.overrides) + flag_overrides(args)
    if args.model_kind == "timesformer":
        from .recipes.video import VideoRecipe, train_video

        summary = train_video(load_recipe(VideoRecipe, config, overrides))
    elif args.model_kind == "unetr":
        from .recipes.volume import VolumeRecipe, train_volume

        summary = train_volume(load_recipe(VolumeRecipe, config, overrides))
    else:
        from .recipes.image import ImageRecipe, train_image

        summary = train_image(load_recipe(ImageRecipe, config, overrides))
    print(json.dumps(summary, indent=2, default=str))
    return 0
