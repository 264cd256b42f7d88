"""``spatio pretrain NAME``: self-supervised pretraining (masked video modelling for VideoMAE) on the built-in
data or a real dataset; the pipeline of NAME's modality runs it."""

from __future__ import annotations

import json

from ..pipelines import default_recipe, family_of, pipeline_for
from ..pipelines.recipes import default_recipes
from ..utils.errors import UserInputError
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
        config, model = default_recipe(args.name, _pretrain_key(args.name, args.data or "builtin"))
    summary = pipeline.pretrain(pipeline.load_recipe(config, overrides, model))
    print(json.dumps(summary, indent=2, default=str))
    return 0


def _pretrain_key(name: str, dataset: str) -> str:
    """The ``defaults.yaml`` key of NAME's pretraining recipe on ``dataset``; a :class:`UserInputError` naming
    the pretraining recipes that exist when there is none."""
    family, table = family_of(name), default_recipes()
    if dataset + PRETRAIN_SUFFIX in table.get(family, {}):
        return dataset + PRETRAIN_SUFFIX
    known = [f"{f} on --data {k.removesuffix(PRETRAIN_SUFFIX)}" for f, recipes in sorted(table.items())
             for k in sorted(recipes) if k.endswith(PRETRAIN_SUFFIX)]
    raise UserInputError(f"no pretraining recipe for {family} on --data {dataset} (spatio pretrain has recipes "
                         f"for: {', '.join(known) or 'none'}); pass --config FILE, a recipe with a pretrain section")
