"""Recipes: YAML files shipped inside the package (``spatiotemporal/configs/``), and which one a command uses.

``configs/defaults.yaml`` maps a model family and a dataset to the recipe ``spatio train FAMILY --data DATASET``
starts from; a registered model name uses its family's recipe with ``model.name`` replaced.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from ..models import ARCHS, model_entry
from ..utils.errors import UserInputError


def config_dir() -> Path:
    """The installed recipes folder (works from a wheel as from a checkout)."""
    return Path(str(resources.files("spatiotemporal") / "configs"))


def known_recipes() -> list[str]:
    return sorted(p.stem for p in config_dir().glob("*.yaml") if p.stem != "defaults")


def find_config(name_or_path: str | Path) -> Path:
    """A recipe by path, or by name among the package's recipes."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    for cand in (config_dir() / f"{name_or_path}.yaml", config_dir() / str(name_or_path)):
        if cand.is_file() and cand.stem != "defaults":
            return cand
    raise FileNotFoundError(f"recipe {str(name_or_path)!r} not found: not a file, and not one of the package's "
                            f"recipes ({', '.join(known_recipes())})")


def default_recipes() -> dict[str, dict[str, str]]:
    """``{family: {dataset: recipe name}}`` from ``configs/defaults.yaml``."""
    return yaml.safe_load((config_dir() / "defaults.yaml").read_text()) or {}


def family_of(name: str) -> str:
    """The model family of a family or registered model name."""
    return name if name in ARCHS else model_entry(name).arch


def default_recipe(name: str, dataset: str | None) -> tuple[str, str | None]:
    """``(recipe name, model name or None)`` for ``spatio train NAME [--data DATASET]``.

    NAME is a family (``timesformer``) or a registered model (``timesformer_small``: the family's recipe
    with that model, see ``Pipeline.load_recipe``). DATASET defaults to ``builtin``.
    """
    family = family_of(name)
    dataset = dataset or "builtin"
    table = default_recipes().get(family, {})
    if dataset not in table:
        known = ", ".join(sorted(table)) or "none"
        raise UserInputError(f"no recipe for {family} on --data {dataset} (recipes for {family}: {known}); pass "
                             f"--config FILE, or add one to {config_dir() / 'defaults.yaml'}")
    return table[dataset], (None if name == family else name)
