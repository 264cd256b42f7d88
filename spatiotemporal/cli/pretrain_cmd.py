"""``spatio pretrain NAME``: self-supervised pretraining (masked video modelling for VideoMAE) on the built-in
data or a real dataset; the pipeline of NAME's modality runs it."""

from __future__ import annotations

import json

from ..pipelines import default_recipe, pipeline_for
from .train_cmd import _common_flags, flag_overrides

#: ``configs/defaults.yaml`` lists a family's pretraining recipes under ``<dataset>-mae``.
PRETRAIN_SUFFIX = "-mae"


def add_parser(sub) -> None:
    p = sub.add_parser("pretrain", help="self-supervised pretraining (masked autoencoder: spatio pretrain videomae)")
    _common_flags(p)
    p.set_defaults(func=run)


def run(args) -> int:
    overrides = list(args.overrides) + flag_overrides(args)
    pipeline = pipeline_for(args.name)
    if args.config:
        config, model = args.config, None
    else:
        config, model = default_recipe(args.name, (args.data or "builtin") + PRETRAIN_SUFFIX)
    summary = pipeline.pretrain(pipeline.load_recipe(config, overrides, model))
    print(json.dumps(summary, indent=2, default=str))
    return 0
