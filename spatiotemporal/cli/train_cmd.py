"""``spatio train NAME``: train a model family or a registered model, on the built-in data or a real dataset."""

from __future__ import annotations

import json

from ..pipelines import default_recipe, family_of, pipeline_for, pipeline_for_recipe
from ..utils.errors import UserInputError
from .common import data_flags


def _common_flags(p) -> None:
    p.add_argument("name", metavar="NAME", help="a model family (timesformer, unetr, vit, ...) or a registered "
                   "model (see `spatio models`)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides, e.g. train.optim.lr=0.01")
    p.add_argument("--config", help="recipe YAML (a path, or a recipe name of the package); default: the family's "
                   "recipe for --data")
    p.add_argument("--data", help="dataset (default: the built-in one)")
    p.add_argument("--data-root", help="dataset directory")
    p.add_argument("--data-file", action="append", metavar="FILE", help="the file of --data-root that lists the "
                   "samples: volumes NAME (the dataset JSON, default dataset_0.json); videos SPLIT=FILE "
                   "(train=, val=, test=, classes=; repeatable)")
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
    _common_flags(p)
    p.add_argument("--fold", type=int, metavar="K", help="k-fold cross-validation: validate on fold K of the "
                   "training list, train on the others (with --folds N; volumes)")
    p.add_argument("--folds", type=int, metavar="N", help="number of folds of the training list (volumes)")
    p.set_defaults(func=run)


def flag_overrides(args) -> list[str]:
    out = data_flags(args)
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
    overrides = list(args.overrides) + flag_overrides(args)
    family = family_of(args.name)
    if args.config:
        pipeline = pipeline_for_recipe(args.config)
        config, model = args.config, (None if args.name == family else args.name)
        if pipeline.modality != pipeline_for(family).modality:
            raise UserInputError(f"--config {args.config} is a {pipeline.modality} recipe; {args.name} is a "
                                 f"{pipeline_for(family).modality} model")
    else:
        pipeline = pipeline_for(args.name)
        config, model = default_recipe(args.name, args.data)
    for spec in args.data_file or []:
        overrides += pipeline.data_file_overrides(spec)
    if args.fold is not None or args.folds is not None:
        overrides += pipeline.fold_overrides(args.fold, args.folds)
    summary = pipeline.train(pipeline.load_recipe(config, overrides, model))
    print(json.dumps(summary, indent=2, default=str))
    return 0
