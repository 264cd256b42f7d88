"""Find the recipe a checkpoint was trained with: ``<run>/config.yaml`` beside ``<run>/checkpoints/``."""

from __future__ import annotations

from pathlib import Path

from ...engine import load_config


def run_config_path(checkpoint: str | Path) -> Path | None:
    p = Path(checkpoint).resolve()
    for cand in (p.parent / "config.yaml", p.parent.parent / "config.yaml"):
        if cand.is_file():
            return cand
    return None


def recipe_for_checkpoint(schema, checkpoint: str | Path, default_config: Path | None, overrides: list[str]):
    """The run's own recipe when the checkpoint sits in a run directory, else ``default_config``."""
    path = run_config_path(checkpoint) or default_config
    return load_config(schema, path, overrides)
