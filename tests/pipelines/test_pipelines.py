"""The modality floor: a model family added outside the package trains, evaluates and predicts through the
unchanged CLI; registered model names resolve to their family's recipe."""

import json
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from spatiotemporal.cli.main import main
from spatiotemporal.models import InputSpec, SpatioModel, register_arch, register_model
from spatiotemporal.pipelines import default_recipe, image, image_seg, pipeline_for, video, volume
from spatiotemporal.utils.errors import UserInputError


@dataclass
class TinyConvVideoConfig:
    img_size: int = 32
    num_frames: int = 8
    in_chans: int = 3
    num_classes: int = 4
    width: int = 8
    mean: tuple = (0.5, 0.5, 0.5)
    std: tuple = (0.25, 0.25, 0.25)


@register_arch
class TinyConvVideo(SpatioModel):
    """A family defined by a user in their own file: no spatiotemporal file knows it."""

    arch = "tinyconv_video_test"
    modality = "video"
    config_cls = TinyConvVideoConfig

    def __init__(self, cfg: TinyConvVideoConfig):
        super().__init__()
        self.cfg = cfg
        self.conv = nn.Conv3d(cfg.in_chans, cfg.width, 3, padding=1)
        self.head = nn.Linear(cfg.width, cfg.num_classes)

    def input_spec(self) -> InputSpec:
        c = self.cfg
        return InputSpec(c.in_chans, (c.num_frames, c.img_size, c.img_size), c.mean, c.std)

    def feature_map(self, x):
        return torch.relu(self.conv(x))

    def forward_features(self, x):
        return self.feature_map(x).mean((2, 3, 4))

    def forward(self, x):
        return self.head(self.forward_features(x))


@register_model(TinyConvVideo)
def tinyconv_video_test_s():
    """a tiny 3D-conv video classifier (test)"""
    return dict(width=6)


pytestmark = pytest.mark.usefixtures("module_cache")


def test_a_new_family_trains_evaluates_and_predicts_with_no_cli_edit(tmp_path, capsys):
    recipe = tmp_path / "tinyconv.yaml"
    recipe.write_text("model: {name: tinyconv_video_test_s}\n"
                      "data: {dataset: builtin, video: {num_frames: 8, sampling_rate: 2, train_jitter_scales: [32, 36],"
                      " crop_size: 32, test_num_crops: 1, random_flip: false}}\n"
                      "train: {epochs: 1, batch_size: 4, optim: {name: adamw, lr: 0.001}}\n")
    out = tmp_path / "run"
    assert main(["train", "tinyconv_video_test_s", "--config", str(recipe), "--out", str(out), "--max-steps", "2",
                 "--workers", "0"]) == 0
    ckpt = out / "checkpoints" / "last.pt"
    spec = torch.load(ckpt, weights_only=True)["task"]["spec"]
    assert spec["arch"] == "tinyconv_video_test" and spec["preprocessing"]["video"]["mean"] == [0.5, 0.5, 0.5]
    assert main(["eval", "--checkpoint", str(ckpt), "--split", "val", "--workers", "0"]) == 0
    from spatiotemporal.data.video import ensure_builtin_video_dataset

    root = ensure_builtin_video_dataset()
    capsys.readouterr()
    assert main(["predict", str(root / (root / "val.csv").read_text().split()[0]), "--checkpoint", str(ckpt),
                 "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["top"]) == 4


def test_registered_model_names_use_their_family_recipe():
    assert default_recipe("timesformer", None) == ("timesformer_tiny_builtin", None)
    assert default_recipe("timesformer_small", "kinetics") == ("timesformer_base_k400", "timesformer_small")
    pipe = pipeline_for("timesformer_small")
    recipe = pipe.load_recipe("timesformer_tiny_builtin", ["model.overrides.depth=2"], "timesformer_small")
    # the model's own definition wins over the recipe's architecture overrides; the recipe's others stay
    assert recipe.model.name == "timesformer_small"
    assert recipe.model.overrides["depth"] == 2 and "embed_dim" not in recipe.model.overrides
    assert recipe.model.overrides["time_embed_std"] == 1.0 and recipe.model.overrides["mixer"] == "divided"
    with pytest.raises(ValueError, match="no recipe for unetr on --data kinetics"):
        default_recipe("unetr_tiny", "kinetics")


@pytest.mark.parametrize("modality, choices, folder, holds", [
    ("image", "'builtin' or 'imagenet'", "imagenet", "train/ and val/, or train.csv and val.csv"),
    ("image_seg", "'builtin' or 'folder'", "folder", "images/<split>/, masks/<split>/, class_names.txt"),
    ("video", "'builtin', 'builtin_motion', 'kinetics' or 'ssv2'", "ssv2", "the something-something-v2-*.json"),
    ("volume", "'builtin', 'builtin_mri', 'btcv' or 'brats'", "btcv", "dataset_0.json, imagesTr/, labelsTr/"),
])
def test_every_modality_names_its_datasets_and_what_a_data_root_holds(modality, choices, folder, holds, tmp_path,
                                                                       monkeypatch):
    """An unknown ``--data`` lists the modality's sets; a folder set without ``--data-root`` says what goes in it;
    ``~`` in ``--data-root`` is the home folder (the volume set then asks for its dataset JSON there)."""
    recipe_cls, root_of = {"image": (image.ImageRecipe, image.data_path),
                           "image_seg": (image_seg.ImageSegRecipe, image_seg.seg_root),
                           "video": (video.VideoRecipe, video.dataset_root),
                           "volume": (volume.VolumeRecipe, volume.dataset_root)}[modality]
    recipe = recipe_cls()
    recipe.data.dataset = "nope"
    with pytest.raises(UserInputError) as err:
        root_of(recipe.data)
    assert str(err.value) == f"data.dataset (--data) must be {choices}, got 'nope'"
    recipe.data.dataset = folder
    with pytest.raises(UserInputError) as err:
        root_of(recipe.data)
    assert str(err.value) == f"--data {folder} needs --data-root DIR (with {holds})"
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "set" / "train").mkdir(parents=True)
    recipe.data.root = "~/set"
    if modality == "volume":
        with pytest.raises(UserInputError, match=r"dataset JSON .*/set/dataset_0.json not found \(there is no"):
            root_of(recipe.data)
    else:
        assert root_of(recipe.data) == tmp_path / "set"
