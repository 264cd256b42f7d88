"""The modality contract: one :class:`Pipeline` per modality (image, video, volume) owns its recipe schema,
datasets (the built-in set included), loss, metrics, evaluation, prediction and the samples ``viz`` draws.

The CLI resolves the pipeline from the model (``type(model).modality``) or the recipe (``model.name``) through
:func:`~spatiotemporal.pipelines.pipeline_for` and calls it; it knows no model family.
"""

from __future__ import annotations

import functools
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ..data.labels_csv import read_class_file
from ..engine import Trainer, config_to_dict, load_config, parse_overrides
from ..models import CheckpointFormatError, arch_class, create_model, init_from_checkpoint, model_entry, model_spec
from ..models.preprocessing import PREPROCESSING_VERSION, check_finite, declare_preprocessing, select_keys
from ..utils.errors import SpatioUserError, UserInputError
from ..utils.run_lock import run_lock
from ..utils.seeding import seed_everything
from .recipes import family_of, find_config

log = logging.getLogger("spatiotemporal.pipelines")


@dataclass
class ModelSection:
    """``name``: a registered model; ``overrides``: config values on top of its defaults."""

    name: str = "timesformer_tiny"
    overrides: dict = field(default_factory=dict)


def dataset_folder(data, builtin: dict[str, Callable[[str | None], Path]], folders: dict[str, str]) -> Path:
    """The folder of the data section's ``data.dataset``: for a name in ``builtin``, that set generated on first use
    (cached under ``data.root``, default the cache root); for a name in ``folders`` (name -> what the folder holds,
    quoted when ``data.root`` is missing), ``data.root``."""
    name = data.dataset
    if name in builtin:
        return builtin[name](data.root)
    if name not in folders:
        *first, last = (repr(n) for n in (*builtin, *folders))
        raise UserInputError(f"data.dataset (--data) must be {', '.join(first)} or {last}, got {name!r}")
    if not data.root:
        raise UserInputError(f"--data {name} needs --data-root DIR (with {folders[name]})")
    return Path(data.root).expanduser()


def owns_run_folder(command: str) -> Callable:
    """Decorator of a pipeline's ``method(self, recipe)`` that writes a run folder: the method runs holding the
    lock of ``recipe.train.out`` (:func:`~spatiotemporal.utils.run_lock.run_lock`), taken before anything is
    written; a second run into that folder stops in one line."""
    def wrap(method: Callable) -> Callable:
        @functools.wraps(method)
        def locked(self, recipe, *args, **kwargs):
            with run_lock(recipe.train.out, command):
                return method(self, recipe, *args, **kwargs)
        return locked
    return wrap


def run_config_path(checkpoint: str | Path) -> Path | None:
    """``<run>/config.yaml`` beside ``<run>/checkpoints/`` (how checkpoints from before format 2 found theirs)."""
    p = Path(checkpoint).resolve()
    for cand in (p.parent / "config.yaml", p.parent.parent / "config.yaml"):
        if cand.is_file():
            return cand
    return None


def _lookup(tree: dict, dotted: str) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


class Pipeline(ABC):
    """Base of the per-modality pipelines. Subclasses set the class facts and implement the hooks below."""

    modality: ClassVar[str]
    recipe_cls: ClassVar[type]  # dataclass with ``model: ModelSection``, ``data: <its data section>``, ``train``
    builtin_recipe: ClassVar[str]  # the recipe whose data section describes the built-in set
    suffixes: ClassVar[tuple[str, ...]]  # input files ``predict`` takes
    input_key: ClassVar[str]  # batch key of the input tensor
    #: the dotted recipe ``data`` keys that are preprocessing (what a checkpoint stores, ``preprocessing_spec``):
    #: what turns an input file into the model's input, never a path, a cache or an augmentation setting
    preprocessing_keys: ClassVar[tuple[str, ...]] = ()
    #: fixed facts of the inputs this pipeline makes, stored beside them and checked on reading (e.g. channel order)
    input_facts: ClassVar[dict[str, Any]] = {}
    #: whether ``predict`` takes a list of models (an ensemble: their probabilities averaged) and
    #: :meth:`evaluate_ensemble` is implemented
    ensembles: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "preprocessing_keys" in cls.__dict__:  # the models floor reduces format-2 specs with these
            declare_preprocessing(cls.modality, cls.preprocessing_keys)

    # ------------------------------------------------------------------ the preprocessing spec
    def preprocessing_spec(self, recipe) -> dict:
        """The preprocessing spec of ``recipe`` (``models/preprocessing.py``): its :attr:`preprocessing_keys`,
        nested as in the data section, with ``version`` and the :attr:`input_facts`."""
        kept, _ = select_keys(config_to_dict(recipe.data), self.preprocessing_keys)
        return {"version": PREPROCESSING_VERSION, **self.input_facts, **kept}

    def stored_preprocessing(self, model: nn.Module, where: str) -> dict:
        """The data keys of the spec ``model`` was loaded with (empty when it stores none): its facts must be this
        pipeline's (a :class:`CheckpointFormatError` naming ``where`` otherwise); keys that are not among
        :attr:`preprocessing_keys` (a format-2 spec reduced while the pipelines were not imported) are ignored
        with one warning."""
        prep = dict((getattr(model, "pretrained_cfg", None) or {}).get("preprocessing") or {})
        prep.pop("version", None)
        for fact, value in self.input_facts.items():
            stored = prep.pop(fact, value)
            if stored != value:
                raise CheckpointFormatError(f"{where}: the stored preprocessing's '{fact}' is {stored!r}; the "
                                            f"{self.modality} pipeline gives {value!r}")
        other = [k for k in _leaf_keys(prep) if k not in self.preprocessing_keys]
        if other:
            log.warning("%s: the stored preprocessing holds keys that are not preprocessing keys of %s models, "
                        "ignored: %s", where, self.modality, ", ".join(other))
            prep, _ = select_keys(prep, self.preprocessing_keys, drop_paths=False)
        return prep

    def recipe_data_from_spec(self, data: dict) -> dict:
        """The recipe ``data`` mapping a stored preprocessing spec gives (hook: e.g. the training-only keys a
        stored value constrains); ``data`` by default."""
        return data

    # ------------------------------------------------------------------ recipes
    def load_recipe(self, config: str | Path, overrides: list[str], model_name: str | None = None):
        """A recipe file, then ``overrides``. With ``model_name`` (a registered model), the recipe's model becomes
        that one: its own definition wins over the recipe's ``model.overrides`` of the same keys, the recipe's
        other overrides (mixer, time-embedding init, ...) still apply."""
        if model_name is None:
            return load_config(self.recipe_cls, find_config(config), overrides)
        base = config_to_dict(load_config(self.recipe_cls, find_config(config)))
        own = model_entry(model_name).defaults
        kept = {k: v for k, v in base["model"]["overrides"].items() if k not in own}
        base["model"] = {"name": model_name, "overrides": kept}
        return load_config(self.recipe_cls, base, overrides, source_name=f"{config} with model {model_name}")

    def recipe_from_checkpoint(self, model: nn.Module, overrides: list[str], checkpoint: str | Path | None = None):
        """The recipe a trained model was made with: its stored preprocessing spec, checked as a recipe is (types,
        ranges, every number finite: a one-line error naming the checkpoint and the key), then ``overrides``
        (logged). Keys the spec does not hold (the dataset's folder, caches, augmentation) come from the run
        folder's ``config.yaml`` when the checkpoint is in one and the dataset is the stored one (logged), else
        keep their defaults.

        A checkpoint from before format 2 has none: its run folder's ``config.yaml`` is used if it is there,
        else the built-in recipe, with a warning that names what was assumed.
        """
        name = getattr(model, "model_name", None)
        where = str(checkpoint) if checkpoint else "the model"
        stored = self.stored_preprocessing(model, where)
        if stored:
            data = _merged(self._run_folder_data(checkpoint, stored, overrides), self.recipe_data_from_spec(stored))
            source = {"data": data, **({"model": {"name": name}} if name else {})}
            source_name = f"{where} (stored preprocessing)"
            try:
                check_finite(self.preprocessing_spec(load_config(self.recipe_cls, source, source_name=source_name)),
                             where, "preprocessing")
            except SpatioUserError as e:
                text = str(e) if where in str(e) else f"{where}: the stored preprocessing is invalid: {e}"
                raise CheckpointFormatError(text) from e
            recipe = load_config(self.recipe_cls, source, overrides, source_name=source_name)
            tree = {"data": stored}
            for key, value in parse_overrides(overrides):
                log.info("%s = %r from the command line (the checkpoint has %r)", key, value, _lookup(tree, key))
            want, got = tuple(model.input_spec().size), tuple(self.input_size(recipe))
            if want != got:
                raise UserInputError(f"{' '.join(overrides)}: the data would give inputs of size {got}, but the model "
                                     f"of {where} takes {want}; leave the input-size keys as the checkpoint has them")
            return recipe
        run_cfg = run_config_path(checkpoint) if checkpoint else None
        if run_cfg is not None:
            log.warning("%s stores no preprocessing (saved before format 2): using its run folder's %s",
                        where, run_cfg)
            recipe = load_config(self.recipe_cls, run_cfg, overrides)
        else:
            recipe = load_config(self.recipe_cls, find_config(self.builtin_recipe), overrides)
            log.warning("%s stores no preprocessing and has no run folder: assuming the built-in recipe %r with the "
                        "model's own input size (%s)", where, self.builtin_recipe, self.describe_data(recipe))
        self.resolve_data(recipe, model)
        return recipe

    def _run_folder_data(self, checkpoint, stored: dict, overrides: list[str]) -> dict:
        """The data keys that are not preprocessing (the dataset's folder and files) from the run folder's
        ``config.yaml`` of ``checkpoint``, when there is one and the command keeps the stored dataset; else {}."""
        run_cfg = run_config_path(checkpoint) if checkpoint else None
        dataset = dict(parse_overrides(overrides)).get("data.dataset", stored.get("dataset"))
        if run_cfg is None or dataset != stored.get("dataset"):
            return {}
        try:
            run_data = config_to_dict(load_config(self.recipe_cls, run_cfg).data)
        except (SpatioUserError, OSError) as e:
            log.info("%s: not read (%s); the data keys that are not preprocessing keep their defaults", run_cfg, e)
            return {}
        if run_data.get("dataset") != dataset:
            return {}
        keys = [k for k in _leaf_keys(run_data) if k not in self.preprocessing_keys]
        located, _ = select_keys(run_data, keys, drop_paths=False)
        log.info("data keys that are not preprocessing (the dataset's folder and files) from the run folder's %s",
                 run_cfg)
        return located

    def recipe_for_viz(self, model: nn.Module, checkpoint: str | None, dataset: str | None, data_root: str | None,
                       img_size: int | None, num_frames: int | None):
        """The recipe a visualisation reads its samples with: a trained model's own (from its checkpoint), else
        the built-in recipe; on another dataset an untrained model's input size and normalisation apply. The
        flags win."""
        over = [f"data.dataset={dataset}"] if dataset else []
        over += [f"data.root={data_root}"] if data_root else []
        if checkpoint or self.stored_preprocessing(model, "the model"):
            recipe = self.recipe_from_checkpoint(model, over, checkpoint)
        else:
            recipe = load_config(self.recipe_cls, find_config(self.builtin_recipe), over)
            if dataset not in (None, "builtin"):
                self.resolve_data(recipe, model)
        size = self.size_overrides(img_size, num_frames)
        return load_config(self.recipe_cls, config_to_dict(recipe), size) if size else recipe

    def data_file_overrides(self, spec: str) -> list[str]:
        """``--data-file SPEC`` as recipe overrides: the file(s) of a dataset folder that list its samples, named
        by each pipeline in its own recipe keys (the CLI knows no modality). None by default."""
        raise UserInputError(f"--data-file {spec}: {self.modality} datasets have no index file to choose")

    def fold_overrides(self, fold: int | None, folds: int | None) -> list[str]:
        """``--fold K --folds N`` as recipe overrides (a k-fold split of the training data), named by each pipeline
        in its own recipe keys. None by default: a one-line refusal."""
        raise UserInputError(f"--fold/--folds: {self.modality} runs have no k-fold split (cross-validation folds "
                             f"are for volume segmentation)")

    def describe_data(self, recipe) -> str:
        """A one-line summary of the preprocessing, for messages."""
        return str(config_to_dict(recipe.data))

    # ------------------------------------------------------------------ models
    @abstractmethod
    def input_size(self, recipe) -> tuple[int, ...]:
        """The input size the data gives (as in ``InputSpec.size``: ``(H, W)``, ``(T, H, W)`` or ``(H, W, D)``)."""

    @abstractmethod
    def resolve_data(self, recipe, model: nn.Module) -> None:
        """Put the model's input facts (size, frames, normalisation) into ``recipe.data``, once."""

    def build_model(self, recipe, class_names: list[str]) -> nn.Module:
        """The recipe's model (registered defaults, recipe overrides, then the input size and class count the
        data decides, through the model's ``input_config``), seeded first so the initial weights are a function
        of the seed; ``train.init`` initialises or inflates it."""
        seed_everything(recipe.train.seed)
        cls = arch_class(family_of(recipe.model.name))
        if cls.modality != self.modality:
            raise UserInputError(f"model.name {recipe.model.name!r} is a {cls.modality} model; this recipe "
                                 f"is for {self.modality} data")
        fitted = cls.input_config(self.input_size(recipe), len(class_names))
        model = create_model(recipe.model.name, **self.fitted_overrides(recipe, fitted))
        if recipe.train.init:
            model = init_from_checkpoint(model, recipe.train.init)
        return model

    def fitted_overrides(self, recipe, fitted: dict) -> dict:
        """``recipe.model.overrides`` with the values the data decides (``fitted``: input size, frames, outputs).
        An override of one of those with another value would be dropped silently: a :class:`UserInputError`
        naming the key, the data's value and the data key to set instead."""
        overrides = recipe.model.overrides
        for key, value in fitted.items():
            given = overrides.get(key, value)
            if _same(given, value):
                continue
            where = {"img_size": self.size_overrides(given if isinstance(given, int) else None, None),
                     "num_frames": self.size_overrides(None, given)}.get(key, [])
            hint = (f"set the data's size instead ({' '.join(where)})" if where else
                    "the dataset's class list decides it" if key in ("num_classes", "out_channels") else
                    "set it on the data instead")
            raise UserInputError(f"model.overrides.{key}={given}: the data decides this value ({value} here), so "
                                 f"it would be ignored; {hint}")
        return {**overrides, **fitted}

    def spec(self, recipe, model: nn.Module, class_names: list[str]) -> dict:
        """What every checkpoint of this run carries (see ``models.model_spec``)."""
        return model_spec(model, preprocessing=self.preprocessing_spec(recipe), class_names=class_names)

    # ------------------------------------------------------------------ training
    @abstractmethod
    def class_names(self, recipe) -> list[str]:
        """The dataset's class names (label i is ``class_names[i]``), read without building the datasets."""

    @abstractmethod
    def datasets(self, recipe) -> tuple[torch.utils.data.Dataset, torch.utils.data.Dataset | None]:
        """``(train, validation)`` datasets of the (resolved) recipe."""

    @abstractmethod
    def task(self, recipe, class_names: list[str], spec: dict):
        """The engine's :class:`~spatiotemporal.engine.Task` (loss, metrics); ``spec`` goes into its state."""

    collate: ClassVar[Callable | None] = None

    def sampler_factory(self, recipe):
        return None

    def after_train(self, summary: dict, class_names: list[str]) -> None:
        """E.g. print a per-class table (nothing by default)."""
        return None

    @owns_run_folder("train")
    def train(self, recipe) -> dict:
        """Build everything from ``recipe`` and run the engine; returns the run summary."""
        class_names = self.class_names(recipe)
        model = self.build_model(recipe, class_names)
        self.resolve_data(recipe, model)
        train_ds, val_ds = self.datasets(recipe)
        log.info("%d train / %d val %s, %d classes; model %s (%.2fM params)", len(train_ds),
                 len(val_ds) if val_ds is not None else 0, recipe.train.throughput_unit, len(class_names),
                 recipe.model.name, sum(p.numel() for p in model.parameters()) / 1e6)
        task = self.task(recipe, class_names, self.spec(recipe, model, class_names))
        trainer = Trainer(model, task, train_ds, val_ds, recipe.train, collate_fn=type(self).collate,
                          sampler_factory=self.sampler_factory(recipe), run_config=recipe)
        summary = trainer.fit()
        self.after_train(summary, class_names)
        return summary

    def pretrain(self, recipe) -> dict:
        """Self-supervised pretraining (``spatio pretrain``); only the video pipeline has one (masked video)."""
        raise UserInputError(f"no self-supervised pretraining for {self.modality} models "
                             "(video models: spatio pretrain videomae)")

    # ------------------------------------------------------------------ evaluation, prediction, samples
    @abstractmethod
    def evaluate(self, model: nn.Module, recipe, split: str | None, batch_size: int, workers: int,
                 device: torch.device) -> dict:
        """Metrics of ``model`` on ``split`` (``None``: the modality's default split), with a ``split`` key."""

    def probe(self, model: nn.Module, recipe, split: str | None, perturbations: list[str] | None, *,
              batch_size: int, workers: int, device: torch.device, seed: int = 0) -> dict:
        """The metric overall and per class on ``split`` under each perturbation of the input along time or depth
        (``spatio probe``; see :mod:`spatiotemporal.pipelines.probe`); a one-line refusal by default."""
        raise UserInputError(f"spatio probe: {self.modality} models have no time or depth axis to perturb "
                             "(expected a video classification or volume segmentation checkpoint)")

    @abstractmethod
    def predict(self, model: nn.Module, recipe, path: str, device: torch.device, out: str | None = None,
                topk: int = 5, classes_file: str | None = None) -> dict:
        """The prediction for one input file, as a JSON-able dict (``top`` classes, or the ``out`` file)."""

    def evaluate_ensemble(self, models: list[nn.Module], names: list[str], recipe, split: str | None,
                          device: torch.device) -> dict:
        """Metrics of each of ``models`` (named ``names``) and of their ensemble on ``split`` (pipelines with
        :attr:`ensembles`); a one-line refusal by default."""
        raise UserInputError(f"--checkpoint given {len(models)} times: {self.modality} models are evaluated one "
                             f"at a time (ensembles are for volume segmentation)")

    @abstractmethod
    def dataset_items(self, recipe, split: str):
        """:class:`~spatiotemporal.viz.samples.DatasetItems`: every item of ``split`` (``spatio embed``)."""

    @abstractmethod
    def viz_samples(self, recipe, split: str, max_samples: int | None, purpose: str):
        """:class:`~spatiotemporal.viz.VizSamples` of ``split`` for ``purpose`` ``"tsne"`` or ``"erf"``."""

    def size_overrides(self, img_size: int | None, num_frames: int | None) -> list[str]:
        """``data.*`` overrides that set the input size (and frames) of this modality's data."""
        return []

    def accepts(self, path: str | Path) -> bool:
        name = str(path).lower()
        return name.endswith(tuple(s.lower() for s in self.suffixes))


def class_names_of(model: nn.Module, classes_file: str | None, n: int) -> list[str]:
    """Class names: ``classes_file`` (one per line, read like ``classes.txt``), else the checkpoint's, else the
    indices."""
    if classes_file:
        if not Path(classes_file).is_file():
            raise FileNotFoundError(f"--classes {classes_file}: file not found (expected one class name per line)")
        names = read_class_file(classes_file)
    else:
        names = list((getattr(model, "pretrained_cfg", None) or {}).get("class_names") or [])
    if names and len(names) != n:
        raise UserInputError(f"{classes_file or 'the checkpoint'}: {len(names)} class names for a model with "
                             f"{n} outputs")
    return names or [str(i) for i in range(n)]


def _merged(base: dict, top: dict) -> dict:
    """``top`` deep-merged over ``base`` (nested mappings merge, other values replace)."""
    out = dict(base)
    for k, v in top.items():
        out[k] = _merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _leaf_keys(tree: dict, prefix: str = "") -> list[str]:
    """The dotted keys of a nested mapping's leaves (a list is a leaf)."""
    out = []
    for k, v in tree.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        out += _leaf_keys(v, key) if isinstance(v, dict) else [key]
    return out


def _same(a, b) -> bool:
    """Config values equal up to list/tuple (YAML gives lists, models hold tuples)."""
    return (tuple(a) if isinstance(a, (list, tuple)) else a) == (tuple(b) if isinstance(b, (list, tuple)) else b)
