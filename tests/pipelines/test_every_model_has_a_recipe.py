"""Every registered model has a recipe on its modality's built-in data and on every dataset its family claims.

A family claims the datasets it lists in ``configs/defaults.yaml``; it must claim ``builtin`` and its modality's main
real layout (``MAIN_LAYOUT``). For every registered model (what ``spatio models`` lists) and every claimed dataset the
recipe is resolved as ``spatio train MODEL --data DATASET`` resolves it (``default_recipe`` + ``load_recipe`` with the
model name), then the model's config is built with the data's input size and a class count through the model's
``input_config`` (``build_config``: validated, no weights). Real models are built only for the CPU-sized built-in
recipes' own models.
"""

from __future__ import annotations

import functools

import pytest

from spatiotemporal.cli.pretrain_cmd import PRETRAIN_SUFFIX
from spatiotemporal.models import ARCHS, arch_class, list_models, model_entry
from spatiotemporal.models._registry import build_config, resolve_aliases
from spatiotemporal.models.validate import ModelConfigError
from spatiotemporal.pipelines import PIPELINES, default_recipe, family_of, get_pipeline, pipeline_for
from spatiotemporal.pipelines.recipes import default_recipes, find_config

#: the real dataset layout every family of a modality must have a recipe for
MAIN_LAYOUT = {"image": "imagenet", "video": "kinetics", "volume": "btcv", "image_seg": "folder"}
NUM_OUTPUTS = 6  # classes or segmentation channels; the data decides it, any count fits
#: models whose patch (7 or 14) does not divide the built-in 32 px images: `spatio train NAME` stops with one line
#: ("img_size 32 is not a multiple of patch_size 14"); this override (28 px crops of the same set) trains them,
#: as docs/recipes.md says
PATCH_MISFITS = {(name, "builtin") for name in ("convmixer_1024_20_ks9_p14", "convmixer_1536_20", "convmixer_768_32",
                                                "vit_huge_patch14_224", "deit3_huge_patch14_224")}
MISFIT_OVERRIDE = "data.image.img_size=28"


def dataset_of(key: str) -> str:
    """The ``data.dataset`` (``--data``) a defaults.yaml key is for (``builtin-mae``: the pretraining recipe)."""
    return key.removesuffix(PRETRAIN_SUFFIX)


def package_families() -> dict:
    """The families this package ships (a family a user registers in their own file, as a test does, brings its
    own recipes)."""
    return {a: c for a, c in ARCHS.items() if c.__module__.startswith("spatiotemporal.")}


def package_models() -> list[str]:
    return [n for n in list_models() if model_entry(n).arch in package_families()]


@functools.cache
def _recipe(config: str, model: str | None, key: str):
    """The recipe as ``spatio train|pretrain NAME --data DATASET`` loads it (the CLI adds ``data.dataset``)."""
    pipeline = get_pipeline(arch_class(family_of(model or _recipe_model(config))).modality)
    return pipeline.load_recipe(config, [f"data.dataset={dataset_of(key)}"], model)


@functools.cache
def _recipe_model(config: str) -> str:
    import yaml
    return yaml.safe_load(find_config(config).read_text())["model"]["name"]


def claims() -> list[tuple[str, str]]:
    table = default_recipes()
    return [(name, key) for name in list_models() for key in table.get(model_entry(name).arch, {})]


def test_every_family_claims_builtin_and_its_modality_main_layout():
    table = default_recipes()
    assert set(MAIN_LAYOUT) == set(PIPELINES)
    missing = []
    for family, cls in sorted(package_families().items()):
        for key in ("builtin", MAIN_LAYOUT[cls.modality]):
            if key not in table.get(family, {}):
                missing.append(f"{family} ({cls.modality}): {key}")
    assert not missing, f"families without a recipe in configs/defaults.yaml: {missing}"
    assert set(table) <= set(ARCHS), f"defaults.yaml names unknown families: {set(table) - set(ARCHS)}"


def test_every_recipe_of_defaults_yaml_is_its_familys_and_reads_its_dataset(tmp_path):
    """Each recipe's model is of the family, and its pipeline knows the dataset: with an empty --data-root the
    error is about the missing files, never 'data.dataset (--data) must be ...'."""
    checked = 0
    for family, entries in default_recipes().items():
        for key, config in entries.items():
            recipe = _recipe(config, None, key)
            assert family_of(recipe.model.name) == family, (family, key, config, recipe.model.name)
            if dataset_of(key).startswith("builtin"):
                continue
            pipeline = pipeline_for(family)
            rooted = pipeline.load_recipe(config, [f"data.dataset={key}", f"data.root={tmp_path}"])
            try:
                pipeline.class_names(rooted)
            except Exception as err:  # noqa: BLE001 - any error but an unknown dataset name
                assert "must be" not in str(err), (family, key, str(err))
            checked += 1
    assert checked >= len(MAIN_LAYOUT) - 1


def fitted_config(pipeline, recipe, family: str):
    """The config ``pipeline.build_model`` would build (registered defaults, recipe overrides, the data's size and
    a class count through ``input_config``), validated, without weights; and the fitted values."""
    fitted = arch_class(family).input_config(pipeline.input_size(recipe), NUM_OUTPUTS)
    values = {**model_entry(recipe.model.name).defaults,
              **resolve_aliases(pipeline.fitted_overrides(recipe, fitted))}
    return build_config(family, values), fitted


@pytest.mark.parametrize("family", sorted(package_families()))
def test_every_registered_model_fits_every_dataset_its_family_claims(family):
    names = [n for n in list_models() if model_entry(n).arch == family]
    assert names, f"family {family} has no registered model"
    pipeline = pipeline_for(family)
    checked = 0
    for name in names:
        for key in default_recipes()[family]:
            config, model = default_recipe(name, key)
            assert model == name
            recipe = _recipe(config, model, key)
            assert recipe.model.name == name and recipe.data.dataset == dataset_of(key)
            if (name, key) in PATCH_MISFITS:
                with pytest.raises(ModelConfigError, match=r"^cannot build .*img_size \d+ is not a multiple of patch"):
                    fitted_config(pipeline, recipe, family)
                recipe = pipeline.load_recipe(config, [f"data.dataset={key}", MISFIT_OVERRIDE], model)
            cfg, fitted = fitted_config(pipeline, recipe, family)
            for k, v in fitted.items():
                got = getattr(cfg, k)
                assert (tuple(got) if isinstance(got, (list, tuple)) else got) == \
                    (tuple(v) if isinstance(v, (list, tuple)) else v), (name, key, k)
            checked += 1
    assert checked == len(names) * len(default_recipes()[family])


@pytest.mark.parametrize("family", sorted(package_families()))
def test_the_builtin_recipe_builds_its_model(family):
    """The family's own built-in recipe builds a real model whose input is what the data gives."""
    config, _ = default_recipe(family, "builtin")
    recipe = _recipe(config, None, "builtin")
    pipeline = pipeline_for(family)
    model = pipeline.build_model(recipe, [str(i) for i in range(NUM_OUTPUTS)])
    assert type(model).arch == family
    assert tuple(model.input_spec().size) == tuple(pipeline.input_size(recipe))
    assert sum(p.numel() for p in model.parameters()) < 20_000_000, "a built-in recipe must stay CPU-sized"


def test_claims_cover_every_registered_model():
    claimed = {name for name, _ in claims()}
    assert claimed == set(package_models())
