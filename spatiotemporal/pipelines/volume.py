"""The volume pipeline: decathlon-style datasets (BTCV, MSD Task01 BraTS) or the built-in CT / MRI phantoms; Dice per
organ (or per BraTS region) with sliding windows; label maps in the patient's space; crops for ``viz``."""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from monai.data import Dataset
from torch import nn

from ..data.perturb import VOLUME_PERTURBATIONS, check_perturbations, perturbation_generator
from ..data.volume import (
    REGION_NAMES,
    VolumeDataConfig,
    build_volume_datasets,
    case_id,
    ensure_builtin_mri_dataset,
    ensure_builtin_volume_dataset,
    fold_split,
    image_channels,
    image_files,
    labels_to_regions,
    load_brats_folder,
    load_header,
    load_volume_datalist,
    preprocess_volume,
    regions_to_labels,
    restore_label_map,
    save_label_map,
    val_transforms,
    validate_datalist,
    volume_collate,
)
from ..engine import TrainConfig, track
from ..engine.progress import progress_enabled
from ..utils.errors import UserInputError
from ..viz.samples import DatasetItems, VizSamples, crop_centered
from .base import ModelSection, Pipeline, class_names_of, dataset_folder
from .ensemble import stored_fold
from .losses import REGION_LOSSES
from .probe import probe_results
from .region_segmentation import RegionScores, RegionSegmentationTask, region_table
from .segmentation import DiceSums, InferenceOptions, SegmentationTask, SurfaceMetrics, dice_table

log = logging.getLogger("spatiotemporal.pipelines")

VOLUME_SUFFIXES = (".nii", ".nii.gz")
SPLITS = {"train": "training", "training": "training", "val": "validation", "validation": "validation"}


@dataclass
class VolumeDataSection:
    dataset: str = "builtin"  # builtin | builtin_mri | btcv (any decathlon-style dataset) | brats (MSD Task01)
    root: str | None = None
    json_name: str = "dataset_0.json"
    channels: list | None = None  # the images' channel names (dataset.json 'modality'), filled when training
    region_loss: str = "dice_bce"  # volume.labels = brats_regions: dice | dice_bce
    overlap: float = 0.25  # sliding-window validation
    sw_batch_size: int = 4
    inference: InferenceOptions = field(default_factory=InferenceOptions)  # blending, devices, flips, LCC, metrics
    volume: VolumeDataConfig = field(default_factory=VolumeDataConfig)
    folds: int = 0  # k-fold cross-validation over the training list (0: off); --folds N
    fold: int = 0  # the fold validated on, 0..folds-1; --fold K
    fold_seed: int = 0  # the shuffle of the split (keep it for every fold of one cross-validation)

    def __post_init__(self) -> None:
        """Inference options and the fold keys are checked when the recipe is read, not after the model and data
        are loaded (that ``folds`` is at most the number of cases: when the list is read)."""
        if self.folds == 1 or self.folds < 0:
            raise ValueError(f"folds (--folds) must be 0 (no k-fold split) or >= 2, got {self.folds}")
        if self.folds and not 0 <= self.fold < self.folds:
            raise ValueError(f"fold (--fold) must be in [0, {self.folds - 1}] for folds={self.folds}, got "
                             f"{self.fold}")
        if not self.folds and self.fold:
            raise ValueError(f"fold (--fold) is {self.fold} but folds is 0 (no k-fold split): give --folds N too")
        if not 0 <= self.overlap < 1:
            raise ValueError(f"overlap (--overlap) must be in [0, 1) (the fraction of a window its neighbour "
                             f"covers), got {self.overlap}")
        if self.sw_batch_size < 1:
            raise ValueError(f"sw_batch_size must be >= 1, got {self.sw_batch_size}")
        if self.region_loss not in REGION_LOSSES:
            raise ValueError(f"data.region_loss must be one of {REGION_LOSSES}, got {self.region_loss!r}")


@dataclass
class VolumeRecipe:
    model: ModelSection = field(default_factory=lambda: ModelSection(name="unetr_tiny"))
    data: VolumeDataSection = field(default_factory=VolumeDataSection)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(throughput_unit="crops", eval_batch_size=1))


MSD_JSON_NAME = "dataset.json"
_SAID: set[str] = set()


def _info_once(root: Path, msg: str, *args) -> None:
    """The layout a folder was read as, said once per folder and process (the datalist is read several times)."""
    if str(root) not in _SAID:
        _SAID.add(str(root))
        log.info(msg, root, *args)


def dataset_root(data: VolumeDataSection) -> Path:
    root = dataset_folder(data, {"builtin": ensure_builtin_volume_dataset, "builtin_mri": ensure_builtin_mri_dataset},
                          {"btcv": f"{data.json_name}, imagesTr/, labelsTr/",
                           "brats": f"the MSD Task01 layout: {MSD_JSON_NAME}, imagesTr/ (4D NIfTI), labelsTr/"})
    if data.dataset == "brats" and root.is_dir():
        if (root / MSD_JSON_NAME).is_file():
            _info_once(root, "%s: MSD Task01 layout (%s found; 4D images, labels 1 edema, 2 non-enhancing, "
                       "3 enhancing)", MSD_JSON_NAME)
            data.json_name, data.volume.label_convention = MSD_JSON_NAME, "msd"
        else:
            _info_once(root, "%s: BraTS layout (no %s: CASE/CASE_{flair,t1,t1ce,t2}.nii.gz + CASE_seg.nii.gz, labels 1 "
                       "necrotic core, 2 edema, 4 enhancing)", MSD_JSON_NAME)
            data.volume.label_convention = "brats"
            return root
    if data.dataset in ("btcv", "brats") and root.is_dir() and not (root / data.json_name).is_file():
        found = sorted(p.name for p in root.glob("*.json"))
        there = f"the JSON files there: {', '.join(found)}" if found else "there is no .json file there"
        raise UserInputError(f"dataset JSON {root / data.json_name} not found ({there}): choose the dataset's "
                             f"decathlon-style JSON with --data-file NAME (recipe key data.json_name)")
    return root


def volume_datalist(data: VolumeDataSection):
    """The cases of the data section's dataset: its decathlon-style JSON, or the BraTS folder layout."""
    root = dataset_root(data)
    if data.dataset == "brats" and not (root / MSD_JSON_NAME).is_file():
        return load_brats_folder(root)
    return load_volume_datalist(root, data.json_name)


def _split(split: str | None) -> str:
    split = split or "val"
    if split not in SPLITS:
        raise UserInputError(f"volume sets have the splits 'train' and 'val' (the dataset JSON's 'training' and "
                             f"'validation' lists; spatio eval also 'fold', a fold run's validation cases), got "
                             f"{split!r}")
    return SPLITS[split]


class VolumePipeline(Pipeline):
    modality = "volume"
    recipe_cls = VolumeRecipe
    builtin_recipe = "unetr_tiny_builtin"
    suffixes = VOLUME_SUFFIXES
    input_key = "image"
    ensembles = True
    collate = staticmethod(volume_collate)
    preprocessing_keys = ("dataset", "overlap", "channels", "inference.mode", "inference.sigma_scale",
                          "inference.tta_flips", "inference.largest_component", *(f"volume.{k}" for k in (
                              "orientation", "pixdim", "a_min", "a_max", "b_min", "b_max", "clip", "crop_foreground",
                              "roi", "nonfinite", "intensity", "labels", "label_convention")))

    def describe_data(self, recipe) -> str:
        v = recipe.data.volume
        intensity = (f"HU window [{v.a_min}, {v.a_max}]" if v.intensity == "ct_window" else
                     "z-score per channel on non-zero voxels")
        return f"orientation {v.orientation}, pixdim {list(v.pixdim)} mm, {intensity}, ROI {list(v.roi)}"

    def input_size(self, recipe) -> tuple[int, ...]:
        return tuple(recipe.data.volume.roi)

    def data_file_overrides(self, spec: str) -> list[str]:
        """``--data-file NAME``: the decathlon-style JSON in ``--data-root`` (``data.json_name``)."""
        return [f"data.json_name={spec}"]

    def resolve_data(self, recipe, model: nn.Module) -> None:
        """The ROI from the model; the images' channel count (``data.channels``) must be the model's input's."""
        spec = model.input_spec()
        recipe.data.volume.roi = tuple(int(s) for s in spec.size)
        channels = recipe.data.channels
        if channels and len(channels) != spec.channels:
            raise UserInputError(f"data.channels: the images have {len(channels)} channel(s) ({', '.join(channels)}) "
                                 f"but the model takes {spec.channels}; set the model's input channels to "
                                 f"{len(channels)} (model.overrides.in_chans, or in_channels for UNETR)")

    def size_overrides(self, img_size, num_frames):
        return [f"data.volume.roi=[{img_size},{img_size},{img_size}]"] if img_size else []

    def class_names(self, recipe) -> list[str]:
        """The dataset's classes, or the regions TC, WT, ET (``volume.labels = brats_regions``); also reads the
        images' channels into ``data.channels`` (names from ``dataset.json``'s ``modality``)."""
        dl = volume_datalist(recipe.data)
        recipe.data.channels = read_channels(dl)
        return list(REGION_NAMES) if recipe.data.volume.labels == "brats_regions" else dl.class_names

    def fold_overrides(self, fold, folds):
        """``--fold K --folds N``: train on the other folds of the training list, validate on fold K."""
        if fold is None and folds is not None:
            log.warning("--folds %d without --fold: validating on the recipe's data.fold (0 unless the recipe sets "
                        "it)", folds)
        return [f"data.{k}={v}" for k, v in (("fold", fold), ("folds", folds)) if v is not None]

    def datasets(self, recipe):
        d = recipe.data
        dl = volume_datalist(d)
        fold = (d.folds, d.fold, d.fold_seed) if d.folds else None
        train_ds, val_ds, _ = build_volume_datasets(dl.json_path, d.volume, d.json_name, recipe.train.seed, datalist=dl,
                                                    fold=fold)
        return train_ds, val_ds

    def fold_record(self, recipe) -> dict | None:
        """What a run on a fold stores (``summary.json``, the checkpoints' task state): ``fold``, ``folds``,
        ``seed`` and ``validation_cases`` (image file names, no path); None without folds."""
        d = recipe.data
        if not d.folds:
            return None
        val = self._fold_cases(d, volume_datalist(d))
        return {"fold": d.fold, "folds": d.folds, "seed": d.fold_seed,
                "validation_cases": [case_id(c) for c in val]}

    def _fold_cases(self, d: VolumeDataSection, dl) -> list[dict[str, str]]:
        """``spatio eval --split fold``: the validation cases of the recipe's fold (out-of-fold evaluation)."""
        if not d.folds:
            raise UserInputError("--split fold: the recipe has no fold (data.folds is 0); evaluate a checkpoint in "
                                 "its fold run's folder (its config.yaml), or give data.folds=N data.fold=K")
        return fold_split(dl.training, folds=d.folds, fold=d.fold, seed=d.fold_seed,
                          where=f"{dl.json_path}: training")[1]

    def _task(self, recipe, class_names, spec=None) -> SegmentationTask:
        d = recipe.data
        state = {"spec": spec} if spec else None
        if d.volume.labels == "brats_regions":
            task = RegionSegmentationTask(class_names, d.volume.roi, d.overlap, d.sw_batch_size, state=state,
                                          convention=d.volume.label_convention, loss=d.region_loss,
                                          inference=d.inference)
        else:
            task = SegmentationTask(class_names, d.volume.roi, d.overlap, d.sw_batch_size, state=state,
                                    inference=d.inference)
        task.spacing = tuple(d.volume.pixdim)
        return task

    def task(self, recipe, class_names, spec):
        task = self._task(recipe, class_names, spec)
        fold = self.fold_record(recipe)
        if fold:
            task.state["fold"] = fold
            log.info("fold %d of %d (seed %d): validating on %d case(s) of the training list", fold["fold"],
                     fold["folds"], fold["seed"], len(fold["validation_cases"]))
        return task

    def after_train(self, summary, class_names):
        if summary.get("final_metrics"):
            table = region_table if list(class_names) == list(REGION_NAMES) else dice_table
            print(table({"resampled grid": summary["final_metrics"]}, class_names))

    @torch.inference_mode()
    def evaluate(self, model, recipe, split, batch_size, workers, device):
        """Per-class Dice (with and without background) of every case of a split, sliding-window, on the original
        grid (the prediction mapped back to the patient's voxels with ``restore_label_map`` against the label
        file as it is, as BTCV reports it) and, under ``resampled_grid``, on the grid the model sees (resampled
        and cropped, what training validates on). ``batch_size`` and ``workers`` are unused: one case at a time."""
        if recipe.data.volume.labels == "brats_regions":
            key, items, _ = self._eval_cases(recipe, split)
            return self._evaluate_regions(model, recipe, items, key, device)
        key, names, metrics = self._evaluate([model], ["model"], recipe, split, device)
        m = metrics["model"]
        print(dice_table({"original grid": m, "resampled grid": m["resampled_grid"]}, names))
        return {"split": key, **m}

    @torch.inference_mode()
    def evaluate_ensemble(self, models, names, recipe, split, device):
        """:meth:`evaluate` of each model (``members``: its checkpoint name, the cross-validation ``fold`` its
        checkpoint records, its metrics) and of their ensemble (``ensemble``: the mean of their probabilities,
        then the post-processing), in one pass over the cases (each is preprocessed once)."""
        if recipe.data.volume.labels == "brats_regions":
            raise UserInputError("--checkpoint given more than once: ensembles of region models (data.volume.labels="
                                 "brats_regions) predict, but are not evaluated yet; evaluate each checkpoint alone")
        labels = [f"#{i + 1}" for i in range(len(models))]
        key, classes, metrics = self._evaluate(models, labels, recipe, split, device, ensemble="ensemble")
        for label, name in zip(labels, names):
            log.info("%s: %s", label, name)
        print(dice_table({f"{k} (original grid)": metrics[k] for k in [*labels, "ensemble"]}, classes))
        members = [{"checkpoint": str(name), "fold": stored_fold(name), **metrics[label]}
                   for label, name in zip(labels, names)]
        return {"split": key, "ensemble": metrics["ensemble"], "members": members}

    @torch.inference_mode()
    def probe(self, model, recipe, split, perturbations, *, batch_size, workers, device, seed=0):
        """Foreground Dice per class on the resampled grid (the grid training validates on) of ``split`` (default:
        val) under each perturbation of the slices along the depth axis (D of ``(B, C, H, W, D)``): the label map
        is perturbed with the image (the ground truth moves with its voxels), so ``shuffled`` and ``flipped`` ask
        whether the model needs the slices in order, ``static`` whether one slice segments without 3D context.
        ``batch_size`` and ``workers`` are unused: one case at a time."""
        if recipe.data.volume.labels == "brats_regions":
            raise UserInputError("spatio probe: region models (data.volume.labels=brats_regions) are not probed yet; "
                                 "expected a label-map segmentation checkpoint")
        names = check_perturbations(perturbations, VOLUME_PERTURBATIONS, "volume")
        key, items, classes = self._eval_cases(recipe, split)
        task, model = self._task(recipe, classes), model.eval()
        cases = [preprocess_volume(item["image"], recipe.data.volume, label=item["label"]) for item in items]

        def run(name):
            fn, gen, dice = VOLUME_PERTURBATIONS[name], perturbation_generator(seed), DiceSums(classes, device)
            for image, meta in track(cases, f"probe {name}", "cases", interval_s=0):
                case_seed = int(torch.randint(2**31 - 1, (1,), generator=gen))
                x = fn(image.to(device), -1, perturbation_generator(case_seed))
                ref = fn(meta["label"], -1, perturbation_generator(case_seed))
                dice.add(task.segment(model, x)[0], ref)
            m = dice.result()
            return {"mean_dice": m["mean_dice"], "num_samples": m["num_samples"],
                    "per_class_dice": {c: m.get(f"dice_{c}") for c in classes[1:]}}
        return probe_results(names, run, "mean_dice", "per_class_dice", split=key, seed=seed, grid="resampled")

    def _eval_cases(self, recipe, split) -> tuple[str, list[dict[str, str]], list[str]]:
        """``(split key, cases, class names)`` of an evaluation: the datalist's split, or with ``split="fold"`` the
        validation cases of the recipe's fold; every case checked first."""
        d = recipe.data
        dl = volume_datalist(d)
        key = "fold" if split == "fold" else _split(split)
        items = self._fold_cases(d, dl) if key == "fold" else getattr(dl, key)
        validate_datalist(items, dl.class_names, where=f"{dl.json_path}: {key}", nonfinite=d.volume.nonfinite)
        return key, items, dl.class_names

    def _evaluate(self, models, labels, recipe, split, device, ensemble: str | None = None):
        """``(split key, class names, {label: metrics})`` of each model of ``models`` (named ``labels``) and, with
        ``ensemble`` (its label), of their averaged probabilities."""
        d = recipe.data
        key, items, names = self._eval_cases(recipe, split)
        task, models = self._task(recipe, names), [m.eval() for m in models]
        surface, tol = d.inference.surface_metrics, d.inference.surface_tolerance_mm
        every = [*labels, *([ensemble] if ensemble else [])]
        original = {k: DiceSums(names, device) for k in every}
        resampled = {k: DiceSums(names, device) for k in every}
        surf_orig = {k: SurfaceMetrics(len(names), tol) for k in every} if surface else {}
        surf_res = {k: SurfaceMetrics(len(names), tol) for k in every} if surface else {}
        for item in track(items, f"eval {key}", "cases", interval_s=0):
            image, meta = preprocess_volume(item["image"], d.volume, label=item["label"])
            x = image.to(device)
            if ensemble is None:
                preds = {label: task.segment(m, x)[0] for label, m in zip(labels, models)}
            else:
                preds, total = {}, None
                for label, m in zip(labels, models):
                    p = task.model_probabilities(m, x)
                    preds[label] = task.labels_from_probabilities(p)[0]
                    total = p if total is None else total.add_(p)
                preds[ensemble] = task.labels_from_probabilities(total / len(models))[0]
            ref_img = nib.load(item["label"])
            ref = np.rint(np.asanyarray(ref_img.dataobj).reshape(meta["original_shape"]))
            ref = torch.from_numpy(ref.astype(np.int64))
            zooms = [float(z) for z in ref_img.header.get_zooms()[:3]]
            for label, pred in preds.items():
                resampled[label].add(pred, meta["label"])
                pred_orig = torch.from_numpy(restore_label_map(pred.cpu(), meta).astype(np.int64))
                original[label].add(pred_orig, ref)
                if surface:  # HD95 (mm) and surface Dice on each grid, with its voxel size (MONAI wants floats)
                    surf_res[label].update(pred[None].cpu(), meta["label"][None, None].cpu(),
                                           [float(z) for z in d.volume.pixdim])
                    surf_orig[label].update(pred_orig[None, None], ref[None, None], zooms)
        out = {}
        for label in every:
            metrics = {"grid": "original", **original[label].result(), "resampled_grid": resampled[label].result()}
            if surface:
                metrics.update(surf_orig[label].result(names))
                metrics["resampled_grid"].update(surf_res[label].result(names))
                for note in metrics.get("hd95_notes", []):
                    log.warning("%s%s (original grid)", "" if ensemble is None else f"{label}: ", note)
            out[label] = metrics
        return key, names, out

    def _evaluate_regions(self, model, recipe, items, key, device):
        """Dice (and HD95) per region, TC / WT / ET: on the original grid (the region masks painted into a label
        map, mapped back with ``restore_label_map``, against the regions of the label file) and on the resampled
        grid the model sees."""
        d, v = recipe.data, recipe.data.volume
        task, model = self._task(recipe, list(REGION_NAMES)), model.eval()
        surface = d.inference.surface_metrics
        original, resampled = RegionScores(REGION_NAMES, surface), RegionScores(REGION_NAMES, surface)
        for item in track(items, f"eval {key}", "cases", interval_s=0):
            image, meta = preprocess_volume(item["image"], v, label=item["label"])
            pred = task.segment(model, image.to(device))[:1].cpu()  # (1, 3, H, W, D)
            resampled.add(pred, labels_to_regions(meta["label"][None, None], v.label_convention), v.pixdim)
            ref_img = nib.load(item["label"])
            ref = np.rint(np.asanyarray(ref_img.dataobj).reshape(meta["original_shape"]))
            pred_map = restore_label_map(regions_to_labels(pred, v.label_convention)[0], meta)
            zooms = [float(z) for z in ref_img.header.get_zooms()[:3]]
            original.add(labels_to_regions(torch.from_numpy(pred_map.astype(np.int64))[None, None], v.label_convention),
                         labels_to_regions(torch.from_numpy(ref.astype(np.int64))[None, None], v.label_convention),
                         zooms)
        metrics = {"grid": "original", **original.result(), "resampled_grid": resampled.result()}
        print(region_table({"original grid": metrics, "resampled grid": metrics["resampled_grid"]}, REGION_NAMES))
        return {"split": key, **metrics}

    @torch.inference_mode()
    def predict(self, model, recipe, path, device, out=None, topk=5, classes_file=None):
        """Label map of ``path`` in the patient's original grid, written as NIfTI with the input's affine.
        ``model``: one model, or a list (an ensemble: the mean of their probabilities, each model with its own
        sliding windows; check them first with ``pipelines.ensemble.check_ensemble``). With region outputs
        (``volume.labels = brats_regions``) the TC / WT / ET masks are painted back into the dataset's label values
        first (``regions_to_labels``: MSD ET -> 3, TC - ET -> 2, WT - TC -> 1)."""
        v = recipe.data.volume
        models = [model] if isinstance(model, nn.Module) else list(model)
        first = models[0]
        n_in, n_model = image_channels(load_header(path, str(path), "image")), first.input_spec().channels
        if n_in != n_model:
            raise UserInputError(f"{path}: the image has {n_in} channel(s) (a 4D NIfTI's last axis) but the model "
                                 f"takes {n_model} ({', '.join(recipe.data.channels or []) or 'its input channels'})")
        image, meta = preprocess_volume(path, v)
        names = class_names_of(first, classes_file, first.config_dict()[type(first).head_key])
        bar = progress_enabled("auto", True)
        if not bar:
            log.info("%s: sliding windows of %s over the preprocessed volume %s%s", path,
                     "x".join(map(str, v.roi)), "x".join(map(str, meta["model_shape"])),
                     f", {len(models)} models averaged" if len(models) > 1 else "")
        task, x = self._task(recipe, names), image.to(device)
        seg = (task.segment(first.eval(), x, progress=bar) if len(models) == 1 else
               task.segment_ensemble([m.eval() for m in models], x, progress=bar))
        if v.labels == "brats_regions":
            seg = regions_to_labels(seg.cpu(), v.label_convention)
        labels = restore_label_map(seg[0, 0].cpu(), meta)
        stem = Path(path).name.removesuffix(".gz").removesuffix(".nii")
        out_path = Path(out) if out else Path(path).with_name(f"{stem}_pred.nii.gz")
        save_label_map(labels, path, out_path)
        result = {"input": str(path), "out": str(out_path), "shape": list(labels.shape),
                  "labels": sorted(int(v) for v in np.unique(labels))}
        return {**result, "models": len(models)} if len(models) > 1 else result

    def dataset_items(self, recipe, split):
        """Every case of ``split`` through the validation chain, one ROI crop centred on the volume,
        ``(1, *roi)``; ids are the image paths; the label is 0 (volumes carry label maps, not a class)."""
        d = recipe.data
        cfg = dataclasses.replace(d.volume, cache="none")
        dl = volume_datalist(d)
        items = getattr(dl, _split(split))
        ds = Dataset(items, val_transforms(cfg))

        def get(i):
            img = np.asarray(ds[i]["image"])
            return torch.from_numpy(crop_centered(img, [s // 2 for s in img.shape[1:]], cfg.roi).copy()), 0

        desc = f"{d.dataset} volumes ({split}, {'x'.join(map(str, cfg.roi))} centred crops)"
        return DatasetItems("volume", list(dl.class_names), [str(it["image"]) for it in items], desc, get)

    def viz_samples(self, recipe, split, max_samples, purpose):
        """Volumes through the validation chain; ``erf``: one centred ROI crop per case (:meth:`dataset_items`);
        ``tsne``: one crop centred on each labelled organ of a case (label = that organ)."""
        if purpose == "erf":
            return self.dataset_items(recipe, split).subset(max_samples)
        d = recipe.data
        cfg = dataclasses.replace(d.volume, cache="none")
        dl = volume_datalist(d)
        ds = Dataset(getattr(dl, _split(split)), val_transforms(cfg))
        roi, organs = cfg.roi, len(dl.class_names) - 1
        total = len(ds) * organs if max_samples is None else min(max_samples, len(ds) * organs)

        def iterate():
            n = 0
            for i in range(len(ds)):
                item = ds[i]
                img, lab = np.asarray(item["image"]), np.asarray(item["label"])[0]
                for k in range(1, organs + 1):
                    where = np.argwhere(lab == k)
                    if len(where) == 0:
                        continue
                    centre = np.round(where.mean(0)).astype(int)
                    yield torch.from_numpy(crop_centered(img, centre, roi).copy()), k
                    n += 1
                    if n >= total:
                        return

        desc = f"{d.dataset} volumes ({split}, {'x'.join(map(str, roi))} crops per organ)"
        return VizSamples("volume", list(dl.class_names), total, desc, iterate)


def read_channels(dl) -> list[str]:
    """The channel names of a dataset's images: ``modality`` of its JSON when it has as many entries as the first
    image has channels (``image_channels``), else ``ch0``, ``ch1``... (one WARNING line saying so)."""
    files = image_files(dl.training[0]["image"])
    n = len(files) if len(files) > 1 else image_channels(load_header(files[0], f"{dl.json_path}: training[0]", "image"))
    if dl.channel_names and len(dl.channel_names) == n:
        return list(dl.channel_names)
    modality = json.loads(dl.json_path.read_text()).get("modality")
    if isinstance(modality, dict) and len(modality) == n:
        return [str(modality[k]) for k in sorted(modality, key=lambda k: int(k) if str(k).isdigit() else 0)]
    if n > 1:
        log.warning("%s: no 'modality' map with %d entries; assuming the %d image channels are ch0..ch%d",
                    dl.json_path, n, n, n - 1)
    return [f"ch{i}" for i in range(n)]
