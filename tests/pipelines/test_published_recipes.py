"""The published recipes are pinned: docs/recipes.md ("Published recipes") holds one table per recipe with our
recipe key, our value, the published value and its source line; each recipe, loaded as the CLI loads it
(``load_recipe``, so defaults count), must have the ``ours`` value at every key, and a row whose ``ours`` differs
from ``published`` must say why in its note. A drift of a YAML (or of a default) is a failing test.

Keys are dotted recipe paths (``train.optim.lr``); ``model.X`` other than ``model.name`` is the model's config value
(registered defaults, then the recipe's overrides); ``-`` marks a published setting we have no key for (its note
says so). Loading a recipe builds no model and reads no data.
"""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import pytest
import yaml

from spatiotemporal.engine.optim import param_groups
from spatiotemporal.models import create_model, model_entry
from spatiotemporal.models._registry import build_config, resolve_aliases
from spatiotemporal.pipelines import pipeline_for_recipe
from spatiotemporal.utils.config import config_to_dict

DOC = Path(__file__).resolve().parents[2] / "docs" / "recipes.md"
#: the recipes whose published values are pinned (a recipe that loses its table fails here)
PINNED = ("mvit_v2_s_k400", "videomae_base_k400_ft", "timesformer_base_k400", "timesformer_hr_k400",
          "timesformer_l_k400", "timesformer_base_ssv2")
COLUMNS = ["key", "ours", "published", "source", "note"]


def published_tables(text: str) -> dict[str, list[dict[str, str]]]:
    """``{recipe: rows}`` from the "## Published recipes" section: a ``### `recipe` ...`` heading, then its table."""
    section = text.split("\n## Published recipes", 1)[1].split("\n## ", 1)[0]
    tables: dict[str, list[dict[str, str]]] = {}
    name = None
    for line in section.splitlines():
        head = re.match(r"###\s+`([\w.-]+)`", line)
        if head:
            name = head.group(1)
            tables[name] = []
            continue
        if name is None or not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == "key" or set(cells[0]) <= {"-", ":", " "} and len(cells[0]) > 1:
            assert cells[0] != "key" or cells == COLUMNS, f"{name}: table columns {cells}, expected {COLUMNS}"
            continue
        assert len(cells) == len(COLUMNS), f"{name}: row {line!r} has {len(cells)} cells, expected {len(COLUMNS)}"
        tables[name].append(dict(zip(COLUMNS, cells, strict=True)))
    return tables


def cell_value(cell: str):
    return yaml.safe_load(cell.strip("`"))


def recipe_value(recipe, key: str):
    if key.startswith("model.") and key != "model.name":
        entry = model_entry(recipe.model.name)
        cfg = build_config(entry.arch, {**entry.defaults, **resolve_aliases(dict(recipe.model.overrides))})
        return getattr(cfg, key.removeprefix("model."))
    node = config_to_dict(recipe)
    for part in key.split("."):
        assert isinstance(node, dict) and part in node, f"no key {key!r} in the recipe"
        node = node[part]
    return node


def same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)
    return a == b


TABLES = published_tables(DOC.read_text())


def test_every_pinned_recipe_has_a_table():
    assert set(PINNED) <= set(TABLES), f"docs/recipes.md lacks tables for {set(PINNED) - set(TABLES)}"
    for name in PINNED:
        assert len(TABLES[name]) >= 8, f"{name}: a pinned table of {len(TABLES[name])} rows"


@pytest.mark.parametrize("name", sorted(TABLES))
def test_recipe_matches_its_published_table(name):
    recipe = pipeline_for_recipe(name).load_recipe(name, [])
    checked = 0
    for row in TABLES[name]:
        where = f"docs/recipes.md, {name}, row {row['key']!r}"
        assert row["source"], f"{where}: no source"
        if row["ours"] != row["published"]:
            assert row["note"], f"{where}: ours {row['ours']} differs from published {row['published']}: say why"
        if row["key"] == "-":
            assert row["note"], f"{where}: a setting without a key needs a note"
            continue
        want, got = cell_value(row["ours"]), recipe_value(recipe, row["key"])
        assert same(got, want), f"{where}: the recipe has {got!r}, the table says {want!r}"
        checked += 1
    assert checked >= 8


def test_a_drift_fails():
    """The check is live: a recipe with one value changed no longer matches its table."""
    name = "videomae_base_k400_ft"
    recipe = pipeline_for_recipe(name).load_recipe(name, ["train.optim.lr=0.001"])
    row = next(r for r in TABLES[name] if r["key"] == "train.optim.lr")
    assert not same(recipe_value(recipe, "train.optim.lr"), cell_value(row["ours"]))
    assert dataclasses.is_dataclass(recipe)


def test_videomae_layer_decay_is_per_block_as_published():
    """The pinned layer decay acts as VideoMAE's: lr scale decay^(depth + 1 - i) with the embedding at i = 0, block
    b at i = b + 1, the pooled norm and the head at depth + 1 (run_class_finetuning.py:416-417)."""
    model = create_model("videomae_tiny")
    depth = model.cfg.depth
    recipe = pipeline_for_recipe("videomae_base_k400_ft").load_recipe("videomae_base_k400_ft", [])
    decay = recipe.train.optim.layer_decay
    names = {id(p): n for n, p in model.named_parameters()}
    scale = {names[id(p)]: g["lr_scale"] for g in param_groups(model, recipe.train.optim) for p in g["params"]}
    assert len(scale) == len(names)
    for name, got in scale.items():
        m = re.match(r"encoder\.blocks\.(\d+)\.", name)
        layer = 0 if name.startswith("patch_embed") else int(m.group(1)) + 1 if m else depth + 1
        assert got == pytest.approx(decay ** (depth + 1 - layer)), name
    assert scale["head.weight"] == 1.0 and scale["fc_norm.weight"] == 1.0
