"""The video pipeline: Kinetics-layout CSVs or the built-in temporal-order set; top-1/top-5 with the multi-view
protocol; top-k prediction of one clip; clips for ``viz``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..data.image import build_mixup
from ..data.perturb import VIDEO_PERTURBATIONS, check_perturbations, perturbation_generator
from ..data.video import (
    ClipMixup,
    VideoClipDataset,
    VideoDataConfig,
    build_video_loader,
    collate_videos,
    ensure_builtin_video_dataset,
    ensure_motion_video_dataset,
    load_test_views,
    resolve_class_names,
)
from ..engine import TrainConfig, Trainer, track
from ..models import VideoMAEPretrainer, arch_class, create_model, init_from_checkpoint, save_pretrained
from ..utils.errors import UserInputError
from ..utils.seeding import seed_everything
from ..viz.samples import DatasetItems
from .base import ModelSection, Pipeline, class_names_of, dataset_folder, owns_run_folder
from .classification import ClassificationTask, MultiLabelTask, top_classes
from .losses import classification_loss
from .masked_video import MaskedPretrainSection, MaskedVideoTask, check_masks_a_tube
from .probe import probe_results
from .recipes import family_of

log = logging.getLogger("spatiotemporal.pipelines")

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".ogv")


@dataclass
class VideoDataSection:
    dataset: str = "builtin"  # builtin | builtin_motion | kinetics ({train,val,test}.csv + classes.txt) | ssv2 (JSON)
    root: str | None = None
    eval_split: str = "val"
    view_reduce: str = "mean"  # mean | sum (official): how the logits of a video's views are combined
    video: VideoDataConfig = field(default_factory=VideoDataConfig)
    smoothing: float = 0.0  # label smoothing (applied by Mixup when it is on), as the image pipeline's keys
    mixup_alpha: float = 0.0  # timm Mixup on (B, C, T, H, W) clips (ClipMixup): one lambda / box per clip
    cutmix_alpha: float = 0.0


@dataclass
class VideoRecipe:
    model: ModelSection = field(default_factory=ModelSection)
    data: VideoDataSection = field(default_factory=VideoDataSection)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(throughput_unit="clips"))
    pretrain: MaskedPretrainSection = field(default_factory=MaskedPretrainSection)  # `spatio pretrain` only


#: The reader of each dataset's annotation files: the dataset name decides it (``data.video.annotation`` follows).
READERS = {"builtin": "csv", "builtin_motion": "csv", "kinetics": "csv", "ssv2": "ssv2"}
DEFAULT_READER = "csv"


def pick_reader(data: VideoDataSection) -> None:
    """Set ``data.video.annotation`` from ``data.dataset`` (``--data ssv2`` reads the SSv2 JSON files whatever the
    recipe's annotation); a recipe that named the other reader on purpose gets one warning."""
    reader = READERS.get(data.dataset)
    if reader is None or data.video.annotation == reader:
        return
    if data.video.annotation != DEFAULT_READER:
        log.warning("data.video.annotation=%s ignored: --data %s is read with the %s reader (the dataset name "
                    "picks it)", data.video.annotation, data.dataset, reader)
    data.video.annotation = reader


def dataset_root(data: VideoDataSection) -> Path:
    pick_reader(data)
    builtin = {"builtin": ensure_builtin_video_dataset,
               "builtin_motion": ensure_motion_video_dataset}  # the motion set without a global cue (motion.py)
    return dataset_folder(data, builtin,
                          {"kinetics": "train.csv, val.csv, test.csv", "ssv2": "the something-something-v2-*.json"})


class VideoPipeline(Pipeline):
    modality = "video"
    recipe_cls = VideoRecipe
    builtin_recipe = "timesformer_tiny_builtin"
    suffixes = VIDEO_SUFFIXES
    input_key = "video"
    collate = staticmethod(collate_videos)
    preprocessing_keys = ("dataset", "view_reduce", *(f"video.{k}" for k in (
        "annotation", "sampling", "num_frames", "sampling_rate", "target_fps", "crop_size", "test_crop_size",
        "test_num_clips", "test_num_crops", "mean", "std", "multi_label")))
    input_facts = {"channel_order": "RGB"}

    def recipe_data_from_spec(self, data: dict) -> dict:
        """The stored keys, with the training jitter scales raised to the stored crop size (they are not stored,
        and ``VideoDataConfig`` refuses a jitter below the crop)."""
        video, crop = data.get("video") or {}, (data.get("video") or {}).get("crop_size")
        if not isinstance(crop, int) or isinstance(crop, bool):
            return data
        lo, hi = VideoDataConfig.train_jitter_scales
        return {**data, "video": {**video, "train_jitter_scales": [max(lo, crop), max(hi, crop)]}}

    def describe_data(self, recipe) -> str:
        v = recipe.data.video
        return (f"{v.num_frames} frames at stride {v.sampling_rate}, {v.crop_size} px, mean {v.mean}, std {v.std}, "
                f"{v.num_views} test view(s)")

    def data_file_overrides(self, spec: str) -> list[str]:
        """``--data-file SPLIT=FILE``: the labels file of a split (``train``, ``val``, ``test``) or the class file
        (``classes``) in ``--data-root``, instead of ``SPLIT.csv`` / ``classes.txt``."""
        keys = {"train": "train_csv", "val": "val_csv", "test": "test_csv", "classes": "class_file"}
        which, eq, name = spec.partition("=")
        if not eq or which not in keys or not name:
            raise UserInputError(f"--data-file {spec}: video datasets have one labels file per split; expected "
                                 f"SPLIT=FILE with SPLIT one of {', '.join(keys)} (e.g. --data-file val=val_small.csv)")
        return [f"data.video.{keys[which]}={name}"]

    def input_size(self, recipe) -> tuple[int, ...]:
        v = recipe.data.video
        return (v.num_frames, v.crop_size, v.crop_size)

    def resolve_data(self, recipe, model: nn.Module) -> None:
        spec, v = model.input_spec(), recipe.data.video
        v.num_frames, v.crop_size = spec.size[0], spec.size[1]
        v.train_jitter_scales = (max(v.train_jitter_scales[0], v.crop_size), max(v.train_jitter_scales[1],
                                                                                  v.crop_size))
        if spec.mean is not None:
            v.mean, v.std = tuple(spec.mean), tuple(spec.std)

    def size_overrides(self, img_size, num_frames):
        out = []
        if img_size:
            out += [f"data.video.crop_size={img_size}", f"data.video.train_jitter_scales=[{img_size},{img_size}]"]
        if num_frames:
            out.append(f"data.video.num_frames={num_frames}")
        return out

    def class_names(self, recipe) -> list[str]:
        return resolve_class_names(dataset_root(recipe.data), recipe.data.video)

    def datasets(self, recipe):
        root, d, seed = dataset_root(recipe.data), recipe.data, recipe.train.seed
        return (VideoClipDataset(root, "train", d.video, seed=seed),
                VideoClipDataset(root, d.eval_split, d.video, seed=seed, multi_view=True))

    def task(self, recipe, class_names, spec):
        d = recipe.data
        mixing = d.mixup_alpha > 0 or d.cutmix_alpha > 0 or d.smoothing > 0
        if d.video.multi_label:
            if mixing:
                raise UserInputError("data.mixup_alpha, data.cutmix_alpha and data.smoothing need single-label "
                                     "classes; expected 0 with data.video.multi_label true")
            return MultiLabelTask("video", view_reduce=d.view_reduce, state={"spec": spec})
        if not mixing:
            return ClassificationTask("video", view_reduce=d.view_reduce, state={"spec": spec})
        mixup_fn = build_mixup(len(class_names), mixup_alpha=d.mixup_alpha, cutmix_alpha=d.cutmix_alpha,
                               smoothing=d.smoothing)
        loss_fn = classification_loss("ce", smoothing=d.smoothing, soft_targets=mixup_fn is not None)
        return ClassificationTask("video", loss_fn=loss_fn, mixup_fn=ClipMixup(mixup_fn) if mixup_fn else None,
                                  view_reduce=d.view_reduce, state={"spec": spec})

    @owns_run_folder("pretrain")
    def pretrain(self, recipe) -> dict:
        """Masked-autoencoder pretraining (``recipe.pretrain``) of the recipe's model on the train split, without
        labels; validation reports the reconstruction loss. Writes ``<out>/encoder.safetensors``: the encoder with
        the data section, for ``spatio train ... --init``. ``train.init`` (``--init``): the encoder starts from those
        weights, read with the checks of ``spatio train --init``. Returns the run summary."""
        seed_everything(recipe.train.seed)
        cls = arch_class(family_of(recipe.model.name))
        fitted = cls.input_config(self.input_size(recipe), 0)
        encoder = create_model(recipe.model.name, **self.fitted_overrides(recipe, fitted))
        if recipe.train.init:  # --init: the encoder starts from these weights (read as for spatio train)
            encoder = init_from_checkpoint(encoder, recipe.train.init)
        p = recipe.pretrain
        model = VideoMAEPretrainer(encoder, p.decoder_dim, p.decoder_depth, p.decoder_heads)
        self.resolve_data(recipe, encoder)
        side = recipe.data.video.crop_size // encoder.cfg.patch_size
        check_masks_a_tube(p, side * side, f"{side}x{side}")
        root, d = dataset_root(recipe.data), recipe.data
        train_ds = VideoClipDataset(root, "train", d.video, seed=recipe.train.seed)
        val_ds = VideoClipDataset(root, d.eval_split, d.video, seed=recipe.train.seed)
        trainer = Trainer(model, MaskedVideoTask(p), train_ds, val_ds, recipe.train, collate_fn=collate_videos,
                          run_config=recipe)
        summary = trainer.fit()
        if trainer.dist.is_main:
            path = save_pretrained(encoder, Path(recipe.train.out) / "encoder.safetensors",
                                   preprocessing=self.preprocessing_spec(recipe), class_names=[])
            summary["encoder"] = str(path)
        return summary

    def evaluate(self, model, recipe, split, batch_size, workers, device, transform=None):
        """Top-1 / top-5 on ``split`` (default: test) with the multi-view protocol (K clips x crops).
        ``transform``: applied to each preprocessed input batch ``(B, V, C, T, H, W)`` (``spatio probe``)."""
        split = split or "test"
        d = recipe.data
        ds = VideoClipDataset(dataset_root(d), split, d.video, seed=recipe.train.seed, multi_view=True)
        loader = build_video_loader(ds, batch_size, num_workers=workers)
        skipped: list[str] = []

        def batches():
            for b in track(loader, f"eval {split}", "batches"):
                skipped.extend(b.get("skipped", []))
                b = {k: v.to(device) if torch.is_tensor(v) else v for k, v in b.items()}
                yield b if transform is None else {**b, "video": transform(b["video"])}

        if d.video.multi_label:
            metrics = MultiLabelTask("video", view_reduce=d.view_reduce).evaluate(model.eval(), batches())
        else:
            metrics = ClassificationTask("video", view_reduce=d.view_reduce).evaluate(model.eval(), batches(),
                                                                                        per_class=True)
            names = class_names_of(model, None, len(metrics.get("per_class_top1", [])))
            metrics["per_class_top1"] = dict(zip(names, metrics.get("per_class_top1", [])))
        return {"split": split, "views": d.video.num_views, "view_reduce": d.view_reduce, **metrics,
                "skipped": len(skipped), "skipped_paths": skipped[:20]}

    def probe(self, model, recipe, split, perturbations, *, batch_size, workers, device, seed=0):
        """Top-1 (%) overall and per class on ``split`` for each perturbation of the frames (names of
        :data:`~spatiotemporal.data.perturb.VIDEO_PERTURBATIONS`), applied along T of the preprocessed clips,
        with the drop from ``original``."""
        if recipe.data.video.multi_label:
            raise UserInputError("spatio probe: multi-label video models are not probed (top-1 per class needs "
                                 "single-label clips)")
        names = check_perturbations(perturbations, VIDEO_PERTURBATIONS, "video")

        def run(name):
            fn, gen = VIDEO_PERTURBATIONS[name], perturbation_generator(seed)
            return self.evaluate(model, recipe, split, batch_size, workers, device,
                                 transform=lambda x: fn(x, -3, gen))
        return probe_results(names, run, "top1", "per_class_top1", split=split or "test", seed=seed)

    @torch.inference_mode()
    def predict(self, model, recipe, path, device, out=None, topk=5, classes_file=None):
        """Top-k classes of one video: the test views, combined as in evaluation (``data.view_reduce``)."""
        views = load_test_views(path, recipe.data.video).to(device)  # (V, C, T, S, S)
        logits = ClassificationTask("video", view_reduce=recipe.data.view_reduce).combine_views(
            model(views)[None])[0]
        names = class_names_of(model, classes_file, logits.shape[-1])
        if recipe.data.video.multi_label:  # independent sigmoid probabilities, not a softmax
            probs = logits.float().sigmoid()
            top = [{"class": names[i], "index": int(i), "probability": float(probs[i])}
                   for i in probs.argsort(descending=True)[:topk].tolist()]
        else:
            top = top_classes(logits, names, topk)
        return {"input": str(path), "views": int(views.shape[0]), "view_reduce": recipe.data.view_reduce,
                "top": top}

    def dataset_items(self, recipe, split):
        """Every clip of ``split``: one deterministic clip per video, centre crop (test view clip 0, crop 0),
        ``(3, T, S, S)``; ids are the video paths."""
        v = recipe.data.video
        v.test_num_clips, v.test_num_crops, v.test_crop_size = 1, 1, None
        ds = VideoClipDataset(dataset_root(recipe.data), split, v, multi_view=True)

        def get(i):
            item = ds[i]
            if "video" not in item:
                return None
            label = item["label"]  # multi-label: the first positive class stands for the clip
            return item["video"][0], int(label.argmax()) if torch.is_tensor(label) and label.ndim else int(label)

        desc = f"{recipe.data.dataset} videos ({split}, {v.num_frames}x{v.crop_size} px)"
        return DatasetItems("video", list(ds.class_names), [str(p) for p, _ in ds.samples], desc, get)

    def viz_samples(self, recipe, split, max_samples, purpose):
        """Clips ``(3, T, S, S)`` of :meth:`dataset_items`, evenly spaced."""
        return self.dataset_items(recipe, split).subset(max_samples)
