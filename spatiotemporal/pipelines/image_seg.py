"""The 2D segmentation pipeline (modality ``image_seg``): images with per-pixel label masks, for SegFormer and the
2D UNETR. The input files are images, as for the ``image`` modality, but the output is a label map, so it is its
own modality (the ``image`` pipeline stays classification): DiceCE loss, sliding-window Dice per class, a PNG label
map per predicted image. Data: the built-in CT-phantom slices or any folder in the layout of
:mod:`spatiotemporal.data.image_seg.folder` (``--data folder --data-root DIR``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from monai.data import Dataset
from PIL import Image
from torch import nn

from ..data.image_seg import (
    SegImageConfig,
    ensure_builtin_seg_dataset,
    image_transforms,
    load_seg_folder,
    read_class_names,
    train_transforms,
    val_transforms,
)
from ..engine import TrainConfig
from ..utils.errors import UserInputError
from ..viz.samples import DatasetItems, VizSamples, crop_centered
from .base import ModelSection, Pipeline, class_names_of, dataset_folder
from .image import IMAGE_SUFFIXES
from .segmentation import SegmentationTask, dice_table


@dataclass
class SegDataSection:
    dataset: str = "builtin"  # builtin (CT-phantom slices) | folder (images/<split>/, masks/<split>/)
    root: str | None = None
    overlap: float = 0.25  # sliding-window evaluation
    sw_batch_size: int = 4
    image: SegImageConfig = field(default_factory=SegImageConfig)


@dataclass
class ImageSegRecipe:
    model: ModelSection = field(default_factory=lambda: ModelSection(name="segformer_b0"))
    data: SegDataSection = field(default_factory=SegDataSection)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(throughput_unit="images", eval_batch_size=1))


def seg_root(data: SegDataSection) -> Path:
    return dataset_folder(data, {"builtin": ensure_builtin_seg_dataset},
                          {"folder": "images/<split>/, masks/<split>/, class_names.txt"})


def _split(split: str | None) -> str:
    split = {"training": "train", "validation": "val"}.get(split or "val", split or "val")
    if split not in ("train", "val"):
        raise UserInputError(f"--split {split}: 2D segmentation sets have the splits 'train' and 'val'")
    return split


class ImageSegPipeline(Pipeline):
    modality = "image_seg"
    recipe_cls = ImageSegRecipe
    builtin_recipe = "segformer_b0_builtin"
    suffixes = IMAGE_SUFFIXES
    input_key = "image"
    preprocessing_keys = ("dataset", "overlap", "image.channels", "image.roi")

    def describe_data(self, recipe) -> str:
        c = recipe.data.image
        return f"{c.channels} channel(s), ROI {list(c.roi)}"

    def input_size(self, recipe) -> tuple[int, ...]:
        return tuple(recipe.data.image.roi)

    def resolve_data(self, recipe, model: nn.Module) -> None:
        spec, c = model.input_spec(), recipe.data.image
        if spec.channels != c.channels:
            raise UserInputError(f"data.image.channels is {c.channels} but the model takes {spec.channels} channel(s); "
                             "set data.image.channels or the model's input channels to match")
        c.roi = tuple(int(s) for s in spec.size)

    def size_overrides(self, img_size, num_frames):
        return [f"data.image.roi=[{img_size},{img_size}]"] if img_size else []

    def class_names(self, recipe) -> list[str]:
        return read_class_names(seg_root(recipe.data))

    def datasets(self, recipe):
        folder = load_seg_folder(seg_root(recipe.data))
        c = recipe.data.image
        val = folder.items.get("val")
        return Dataset(folder.items["train"], train_transforms(c)), (Dataset(val, val_transforms(c)) if val else None)

    def _task(self, recipe, class_names, spec=None) -> SegmentationTask:
        d = recipe.data
        return SegmentationTask(class_names, d.image.roi, d.overlap, d.sw_batch_size,
                                state={"spec": spec} if spec else None)

    def task(self, recipe, class_names, spec):
        return self._task(recipe, class_names, spec)

    def after_train(self, summary, class_names):
        if summary.get("final_metrics"):
            print(dice_table({"dice": summary["final_metrics"]}, class_names))

    def evaluate(self, model, recipe, split, batch_size, workers, device):
        """Per-class Dice (with and without background) on whole images, sliding-window."""
        folder, key = load_seg_folder(seg_root(recipe.data)), _split(split)
        if not folder.items.get(key):
            raise UserInputError(f"{folder.root}: no '{key}' images (expected images/{key}/ and masks/{key}/)")
        loader = torch.utils.data.DataLoader(Dataset(folder.items[key], val_transforms(recipe.data.image)),
                                             batch_size=1, num_workers=workers)
        batches = ({k: v.to(device) if torch.is_tensor(v) else v for k, v in b.items()} for b in loader)
        metrics = self._task(recipe, folder.class_names).evaluate(model.eval(), batches)
        print(dice_table({"dice": metrics}, folder.class_names))
        return {"split": key, **metrics}

    @torch.inference_mode()
    def predict(self, model, recipe, path, device, out=None, topk=5, classes_file=None):
        """The label map of one image, at the image's own size, written as a PNG of label values."""
        image = image_transforms(recipe.data.image)({"image": str(path)})["image"][None].to(device)
        names = class_names_of(model, classes_file, model.config_dict()[type(model).head_key])
        labels = self._task(recipe, names).predict(model.eval(), image).argmax(1)[0].cpu().numpy()
        out_path = Path(out) if out else Path(path).with_name(f"{Path(path).stem}_pred.png")
        Image.fromarray(labels.astype(np.uint8 if len(names) <= 256 else np.uint16)).save(out_path)
        return {"input": str(path), "out": str(out_path), "shape": list(labels.shape),
                "labels": sorted(int(v) for v in np.unique(labels))}

    def dataset_items(self, recipe, split):
        """Every image of ``split`` through the evaluation chain, one ROI-sized centre crop (zero-padded); ids are
        the image paths; the label is the image's largest labelled class (0 when it holds none)."""
        c = recipe.data.image
        folder = load_seg_folder(seg_root(recipe.data))
        items = folder.items.get(_split(split)) or []
        ds = Dataset(items, val_transforms(c))

        def get(i):
            item = ds[i]
            img, lab = np.asarray(item["image"]), np.asarray(item["label"])[0].astype(int)
            counts = np.bincount(lab.ravel(), minlength=len(folder.class_names))[1:]
            crop = torch.from_numpy(crop_centered(img, [s // 2 for s in img.shape[1:]], c.roi).copy())
            return crop, int(counts.argmax()) + 1 if counts.any() else 0

        desc = f"{recipe.data.dataset} 2D segmentation images ({split}, {'x'.join(map(str, c.roi))} crops)"
        return DatasetItems("image", list(folder.class_names), [str(it["image"]) for it in items], desc, get)

    def viz_samples(self, recipe, split, max_samples, purpose):
        """Centre crops of :meth:`dataset_items`, evenly spaced; ``tsne`` keeps the images holding a labelled
        class, labelled with their largest class."""
        sub = self.dataset_items(recipe, split).subset(max_samples)
        if purpose == "erf":
            return sub
        return VizSamples(sub.kind, sub.class_names, sub.total, sub.description,
                          lambda: ((x, y) for x, y in sub if y > 0))
