"""The image pipeline: the DeiT III recipe on ImageNet folders / CSVs or the built-in shapes set; top-1/top-5;
top-k prediction of one image; images for ``viz``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..data.image import (
    CsvImageDataset,
    ImageDataConfig,
    ImageFolderDataset,
    RASampler,
    build_image_datasets,
    build_mixup,
    collate_images,
    ensure_builtin_image_dataset,
    eval_transform,
    image_class_names,
    image_root,
    load_rgb,
)
from ..engine import TrainConfig, track
from ..utils.errors import UserInputError
from ..viz.samples import DatasetItems
from .base import ModelSection, Pipeline, class_names_of, dataset_folder
from .classification import ClassificationTask, top_classes
from .losses import classification_loss

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".gif")


@dataclass
class ImageDataSection:
    dataset: str = "builtin"  # builtin | imagenet (folder layout or CSVs)
    root: str | None = None
    image: ImageDataConfig = field(default_factory=ImageDataConfig)
    loss: str = "bce"  # bce (DeiT III, binarised mixup targets) | ce (label smoothing, ImageNet-21k style)
    smoothing: float = 0.0
    mixup_alpha: float = 0.8
    cutmix_alpha: float = 1.0


@dataclass
class ImageRecipe:
    model: ModelSection = field(default_factory=lambda: ModelSection(name="vit_tiny_builtin"))
    data: ImageDataSection = field(default_factory=ImageDataSection)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(throughput_unit="images"))


def data_path(data: ImageDataSection) -> Path:
    """The dataset folder (the built-in set is generated into its cache, ``data.root`` or the cache root)."""
    return image_root(dataset_folder(data, {"builtin": ensure_builtin_image_dataset},
                                     {"imagenet": "train/ and val/, or train.csv and val.csv"}))


class ImagePipeline(Pipeline):
    modality = "image"
    recipe_cls = ImageRecipe
    builtin_recipe = "vit_tiny_builtin"
    suffixes = IMAGE_SUFFIXES
    input_key = "image"
    collate = staticmethod(collate_images)
    preprocessing_keys = ("dataset", *(f"image.{k}" for k in ("img_size", "eval_crop_ratio", "interpolation", "mean",
                                                               "std")))
    input_facts = {"channel_order": "RGB"}

    def describe_data(self, recipe) -> str:
        c = recipe.data.image
        return f"{c.img_size} px, crop ratio {c.eval_crop_ratio}, mean {c.mean}, std {c.std}"

    def data_file_overrides(self, spec: str) -> list[str]:
        raise UserInputError(f"--data-file {spec}: image datasets have no index file to choose; --data-root holds "
                             f"train/ and val/ class folders, or train.csv and val.csv")

    def input_size(self, recipe) -> tuple[int, ...]:
        return (recipe.data.image.img_size,) * 2

    def resolve_data(self, recipe, model: nn.Module) -> None:
        spec, c = model.input_spec(), recipe.data.image
        c.img_size = spec.size[0]
        if spec.mean is not None:
            c.mean, c.std = tuple(spec.mean), tuple(spec.std)

    def size_overrides(self, img_size, num_frames):
        return [f"data.image.img_size={img_size}"] if img_size else []

    def class_names(self, recipe) -> list[str]:
        return image_class_names(data_path(recipe.data))

    def datasets(self, recipe):
        return build_image_datasets(data_path(recipe.data), recipe.data.image, seed=recipe.train.seed)

    def task(self, recipe, class_names, spec):
        d = recipe.data
        mixup_fn = build_mixup(len(class_names), mixup_alpha=d.mixup_alpha, cutmix_alpha=d.cutmix_alpha,
                               smoothing=d.smoothing)
        loss_fn = classification_loss(d.loss, smoothing=d.smoothing, soft_targets=mixup_fn is not None)
        return ClassificationTask("image", loss_fn=loss_fn, mixup_fn=mixup_fn, state={"spec": spec})

    def sampler_factory(self, recipe):
        reps, round_to = recipe.data.image.repeated_aug, recipe.data.image.ra_round_to
        if reps <= 1:
            return None

        def factory(ds, shuffle, seed, rank, world):
            return RASampler(ds, reps, world, rank, shuffle, seed, round_to if round_to > 1 else None)

        return factory

    def evaluate(self, model, recipe, split, batch_size, workers, device):
        """Top-1 / top-5 on the validation images (resize + centre crop)."""
        split = split or "val"
        if split != "val":
            raise UserInputError(f"image evaluation reads the 'val' split, got {split!r}")
        _, val_ds = build_image_datasets(data_path(recipe.data), recipe.data.image, seed=recipe.train.seed)
        loader = torch.utils.data.DataLoader(val_ds, batch_size=batch_size, num_workers=workers,
                                             collate_fn=collate_images)
        batches = ({k: v.to(device) if torch.is_tensor(v) else v for k, v in b.items()}
                   for b in track(loader, f"eval {split}", "batches"))
        return {"split": split, **ClassificationTask("image").evaluate(model.eval(), batches)}

    @torch.inference_mode()
    def predict(self, model, recipe, path, device, out=None, topk=5, classes_file=None):
        """Top-k classes of one image (the evaluation transform)."""
        logits = model(eval_transform(recipe.data.image)(load_rgb(path))[None].to(device))[0]
        names = class_names_of(model, classes_file, logits.shape[-1])
        return {"input": str(path), "top": top_classes(logits, names, topk)}

    def dataset_items(self, recipe, split):
        """Every image of ``split`` with the evaluation transform (resize + centre crop + normalise), ``(3, S, S)``;
        ids are the image paths."""
        cfg = recipe.data.image
        root = data_path(recipe.data)
        tf = eval_transform(cfg)
        names = image_class_names(root) if split != "train" else None
        if (root / split).is_dir():
            ds = ImageFolderDataset(root / split, tf, class_names=names)
        elif (root / f"{split}.csv").is_file():
            ds = CsvImageDataset(root / f"{split}.csv", tf, class_names=names)
        else:
            raise FileNotFoundError(f"{root}: no '{split}/' class folders and no '{split}.csv'")

        def get(i):
            item = ds[i]
            return (item["image"], int(item["label"])) if "image" in item else None

        desc = f"{recipe.data.dataset} images ({split}, {cfg.img_size} px)"
        return DatasetItems("image", list(ds.class_names), [p for p, _ in ds.samples], desc, get)

    def viz_samples(self, recipe, split, max_samples, purpose):
        """Images ``(3, S, S)`` of :meth:`dataset_items`, evenly spaced."""
        return self.dataset_items(recipe, split).subset(max_samples)
