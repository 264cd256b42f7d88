"""Config system: YAML + dotted overrides over nested dataclasses, coercion, clear errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest
import yaml

from spatiotemporal.engine import TrainConfig
from spatiotemporal.utils.config import ConfigError, config_to_dict, dump_config, load_config


@dataclass
class DataSection:
    num_frames: int = 8
    mean: tuple[float, float, float] = (0.45, 0.45, 0.45)
    crop: int | None = None
    flip: bool = True


@dataclass
class ModelSection:
    name: str = "timesformer"
    attention: Literal["divided", "joint", "space_only"] = "divided"
    overrides: dict = field(default_factory=dict)


@dataclass
class Recipe:
    data: DataSection = field(default_factory=DataSection)
    model: ModelSection = field(default_factory=ModelSection)
    train: TrainConfig = field(default_factory=TrainConfig)


def write(tmp_path, text: str):
    p = tmp_path / "recipe.yaml"
    p.write_text(text)
    return p


def test_defaults_yaml_then_overrides(tmp_path):
    p = write(tmp_path, """
data: {num_frames: 16, mean: [0.5, 0.5, 0.5]}
model: {attention: joint, overrides: {drop_path_rate: 0.1, depth: 4}}
train:
  optim: {name: sgd, lr: 1e-4}
  sched: {name: step, steps: [0, 11, 14], lrs: [1, 0.1, 0.01]}
""")
    cfg = load_config(Recipe, p, ["train.optim.lr=0.005", "model.overrides.drop_path_rate=0.2",
                                  "data.crop=224", "train.epochs=15", "train.clip_grad=1"])
    assert cfg.data.num_frames == 16 and cfg.data.mean == (0.5, 0.5, 0.5)
    assert cfg.data.flip is True and cfg.data.crop == 224
    assert cfg.model.attention == "joint"
    assert cfg.model.overrides == {"drop_path_rate": 0.2, "depth": 4}  # merged, override wins
    # "1e-4" is a string for PyYAML; the float field coerces it, then the override replaces it
    assert cfg.train.optim.name == "sgd" and cfg.train.optim.lr == 0.005 and isinstance(cfg.train.optim.lr, float)
    assert cfg.train.sched.steps == [0.0, 11.0, 14.0] and cfg.train.sched.lrs == [1.0, 0.1, 0.01]
    assert cfg.train.epochs == 15 and cfg.train.clip_grad == 1.0 and isinstance(cfg.train.clip_grad, float)
    # untouched defaults survive
    assert cfg.train.optim.momentum == 0.9 and cfg.train.batch_size == TrainConfig().batch_size


def test_override_coercion_and_null(tmp_path):
    cfg = load_config(Recipe, None, ["data.flip=false", "data.crop=null", "train.max_steps=100",
                                     "train.optim.betas=[0.9, 0.95]", "train.optim.lr=1e-3",
                                     "model.overrides.block.mlp_ratio=2"])
    assert cfg.data.flip is False and cfg.data.crop is None and cfg.train.max_steps == 100
    assert cfg.train.optim.betas == (0.9, 0.95) and cfg.train.optim.lr == 1e-3
    assert cfg.model.overrides == {"block": {"mlp_ratio": 2}}


def test_unknown_key_in_yaml_names_file_and_valid_keys(tmp_path):
    p = write(tmp_path, "train:\n  optim:\n    learning_rate: 0.1\n")
    with pytest.raises(ConfigError) as e:
        load_config(Recipe, p)
    msg = str(e.value)
    assert str(p) in msg and "train.optim.learning_rate" in msg
    assert "Valid keys:" in msg and "weight_decay" in msg and "momentum" in msg and "lr" in msg


def test_unknown_key_on_command_line_suggests_closest():
    with pytest.raises(ConfigError) as e:
        load_config(Recipe, None, ["data.num_frame=16"])
    msg = str(e.value)
    assert msg.startswith("command line") and "data.num_frame" in msg
    assert "Did you mean 'num_frames'?" in msg and "mean" in msg and "flip" in msg
    with pytest.raises(ConfigError, match="unknown key 'trian' at the top level.*Did you mean 'train'"):
        load_config(Recipe, None, ["trian.epochs=3"])


def test_bad_values_and_malformed_overrides(tmp_path):
    with pytest.raises(ConfigError, match="malformed override 'train.epochs'"):
        load_config(Recipe, None, ["train.epochs"])
    with pytest.raises(ConfigError, match="key 'train.epochs'.*expected an int"):
        load_config(Recipe, None, ["train.epochs=three"])
    with pytest.raises(ConfigError, match=r"key 'model.attention'.*not one of \['divided', 'joint', 'space_only'\]"):
        load_config(Recipe, None, ["model.attention=axial"])
    with pytest.raises(ConfigError, match="expected 3 items"):
        load_config(Recipe, None, ["data.mean=[0.5, 0.5]"])
    with pytest.raises(ConfigError, match="has no sub-key"):
        load_config(Recipe, None, ["data.num_frames.x=1"])
    p = write(tmp_path, "data: 5\n")
    with pytest.raises(ConfigError, match=f"{p}: key 'data': expected a mapping"):
        load_config(Recipe, p)
    with pytest.raises(FileNotFoundError):
        load_config(Recipe, tmp_path / "missing.yaml")


def test_dump_round_trip(tmp_path):
    cfg = load_config(Recipe, None, ["data.num_frames=4", "model.overrides.drop_path_rate=0.3",
                                     "train.sched.lrs=[1, 0.1]", "train.sched.steps=[0, 3]"])
    out = tmp_path / "run" / "config.yaml"
    dump_config(cfg, out)
    assert yaml.safe_load(out.read_text()) == config_to_dict(cfg)
    again = load_config(Recipe, out)
    assert again == cfg
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]
