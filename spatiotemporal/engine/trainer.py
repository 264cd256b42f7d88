"""Generic, task-agnostic training loop: DDP or FSDP2 (``train.parallel``), accumulation, AMP, optional
``torch.compile`` (``train.compile``), exact mid-epoch resume.

The run directory ``cfg.out`` receives ``config.yaml``, ``metrics.jsonl``, ``checkpoints/last.pt``,
``checkpoints/best.pt``, ``summary.json`` (and ``tensorboard/`` when tensorboard is installed); only
rank 0 writes.

A run is never poisoned or silently wrong:

- the loss is checked at every optimiser step (one device sync); weights and optimiser state are
  checked before every checkpoint, and a mid-epoch ``last.pt`` is written only once the next step's
  loss shows its weights give a finite loss. Anything non-finite stops the run with
  :class:`~.errors.TrainingDiverged`, naming the last good checkpoint.
- an accumulation window without a usable sample (every input skipped) takes no optimiser update; an
  epoch without one, or an evaluation over zero samples, stops the run with
  :class:`~.errors.NoUsableSamples` (the rule for evaluations: the task's ``num_samples`` metric
  when it reports one). An empty validation set is refused before training starts.
- a non-finite evaluation metric is never a best; ``best.pt`` and ``last.pt`` are written atomically.
- Ctrl-C (``KeyboardInterrupt``) leaves the last checkpoint whole and logs which one ``--resume`` continues from.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler

from ..data.samplers import ResumableSampler
from ..utils.atomic import atomic_write_text, remove_orphaned_temp_files
from .checkpoint import CheckpointError, checkpoint_dir, load_checkpoint, non_finite, save_checkpoint, shareable_payload
from .compile import CompiledOrEager
from .config import ConfigError, config_to_dict, dump_config
from .distributed import DistInfo, all_gather_object, all_reduce_sum, barrier, init_distributed
from .errors import NoUsableSamples, TrainingDiverged
from .loading import SkipCounter, available_cores, describe_paths, move_to_device, rng_isolated
from .metrics_log import MetricsLogger
from .optim import build_optimizer
from .parallel import parallel_mode
from .precision import amp_dtype, autocast, make_grad_scaler
from .progress import ProgressBar, progress_enabled
from .rng import get_rng_state, seed_everything, set_rng_state
from .run_plan import plan_run
from .run_state import AccumWindow, Meter, RunState
from .schedule import LRSchedule
from .task import Task
from .train_config import TrainConfig

__all__ = ["Trainer", "SamplerFactory", "move_to_device"]

logger = logging.getLogger("spatiotemporal.engine")

SamplerFactory = Callable[[Dataset, bool, int, int, int], Sampler]


def _default_sampler_factory(dataset: Dataset, shuffle: bool, seed: int, rank: int, world: int) -> Sampler:
    return ResumableSampler(len(dataset), shuffle=shuffle, seed=seed, rank=rank, world_size=world)


class _DeviceLoader:
    """Iterable over a DataLoader's batches with ``"skipped"`` counted (into ``skips``) and removed and
    tensors moved to the trainer's device; advances ``bar`` per batch consumed. ``len()`` and
    ``dataset`` as the DataLoader's."""

    def __init__(self, trainer: Trainer, loader: DataLoader, skips: SkipCounter,
                 bar: ProgressBar | None = None) -> None:
        self.trainer, self.loader, self.dataset, self.skips, self.bar = trainer, loader, loader.dataset, skips, bar

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        t = self.trainer
        for batch in t._iterate(self.loader):
            yield move_to_device(self.skips.pop_from(batch), t.device, non_blocking=t.device.type == "cuda")
            if self.bar is not None:
                self.bar.update()


class Trainer:
    """Train ``model`` with ``task`` on ``train_dataset``; evaluate on ``val_dataset`` at epoch ends.

    Args:
        model: the bare ``nn.Module`` (the trainer moves it to the device and wraps it in DDP).
        task: see :class:`~spatiotemporal.engine.task.Task`.
        train_dataset / val_dataset: map-style datasets (``val_dataset`` may be None, not empty);
            ``set_epoch(epoch)`` is called on them before each epoch's loader is created when they have it.
        cfg: :class:`TrainConfig`.
        collate_fn / val_collate_fn: DataLoader collate functions (``val_collate_fn`` defaults to
            ``collate_fn``). A dict batch may carry ``"skipped"``: the inputs the loader skipped (a list
            of paths, or a number).
        sampler_factory: ``(dataset, shuffle, seed, rank, world) -> sampler`` following the
            ``ResumableSampler`` protocol (``set_epoch``, ``set_start``, ``__len__``).
        run_config: the full recipe to write as ``config.yaml`` (default: ``cfg`` unless the file exists).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        task: Task,
        train_dataset: Dataset,
        val_dataset: Dataset | None,
        cfg: TrainConfig,
        collate_fn: Callable | None = None,
        sampler_factory: SamplerFactory | None = None,
        val_collate_fn: Callable | None = None,
        run_config: Any = None,
    ) -> None:
        for name in ("batch_size", "accum_steps", "epochs", "log_every"):
            if getattr(cfg, name) < 1:
                raise ConfigError(f"train.{name} must be >= 1, got {getattr(cfg, name)}")
        self.model = model
        self.task = task
        self.train_dataset = train_dataset
        self.val_dataset = val_dataset
        self.cfg = cfg
        self.collate_fn = collate_fn
        self.val_collate_fn = val_collate_fn or collate_fn
        self.sampler_factory = sampler_factory or _default_sampler_factory
        self.run_config = run_config
        self.out = Path(cfg.out)
        self.dist: DistInfo | None = None
        self.device: torch.device | None = None
        self.state = RunState()
        self.meter = Meter()
        self.window = AccumWindow()
        self.train_skips, self.val_skips = SkipCounter(), SkipCounter()
        self._pending: dict[str, Any] | None = None  # a mid-epoch checkpoint awaiting the next loss check
        self._last_good: tuple[Path, int] | None = None  # (last.pt, its step) once one exists
        self._warned_empty_epoch = -1

    # ------------------------------------------------------------------ helpers
    def _info(self, msg: str, *args: Any) -> None:
        if self.dist is not None and self.dist.is_main:
            logger.info(msg, *args)

    def _warn(self, msg: str, *args: Any) -> None:
        if self.dist is not None and self.dist.is_main:
            logger.warning(msg, *args)

    def _sum(self, *values: float) -> list[float]:
        """``values`` summed over all ranks (collective)."""
        return all_reduce_sum(torch.tensor(values, dtype=torch.float64, device=self.device)).tolist()

    def _loader(self, dataset: Dataset, sampler: Sampler, batch_size: int, collate: Callable | None,
                drop_last: bool, seed: int) -> DataLoader:
        return DataLoader(
            dataset, batch_size=batch_size, sampler=sampler, num_workers=self._workers,
            collate_fn=collate, drop_last=drop_last, pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(seed),  # never draw worker seeds from the global RNG
        )

    def _iterate(self, loader: DataLoader) -> Iterable[Any]:
        return rng_isolated(loader) if self._workers == 0 else loader

    def _device_batches(self, loader: DataLoader, skips: SkipCounter, bar: ProgressBar | None = None):
        return _DeviceLoader(self, loader, skips, bar)

    def _epoch_position(self) -> float:
        return self.state.epoch + self.state.batches_done / self.plan.batches_per_epoch

    # ------------------------------------------------------------------ errors
    def _diverged(self, step: int, what: str) -> TrainingDiverged:
        where = f"training diverged at step {step} (epoch {self._epoch_position():.2f}): {what}"
        if self._last_good is None:
            hint = "no checkpoint was written yet: start again with a lower train.optim.lr"
        else:
            path, good = self._last_good
            hint = (f"the last good checkpoint is {path} (step {good}): continue from it with --resume "
                    f"(train.resume=true) and a lower train.optim.lr")
        return TrainingDiverged(f"{where}; nothing non-finite was saved; {hint}")

    def _interrupted(self) -> str:
        where = f"interrupted at step {self.state.step} (epoch {self._epoch_position():.2f})"
        if self._last_good is None:
            every = self.cfg.checkpoint_every
            return (f"{where}; no checkpoint was written yet (the first comes at the end of epoch 1"
                    + (f" or at step {every}" if every else "; train.checkpoint_every=N writes one every N steps")
                    + ")")
        path, good = self._last_good
        return f"{where}; {path} (step {good}) is whole: continue from it with --resume (train.resume=true)"

    def _no_training_samples(self, epoch_done: bool) -> NoUsableSamples:
        s, skips = self.state, self.train_skips
        skipped = int(self._sum(skips.current)[0])
        epoch = s.epoch if epoch_done else s.epoch + 1
        batches = self.plan.batches_per_epoch if epoch_done else s.batches_done
        why = (f"{skipped} inputs were skipped as unreadable (e.g. {skips.describe_current()})" if skipped
               else "the task's train_step counted 0 samples in every batch")
        return NoUsableSamples(
            f"epoch {epoch} had no usable training sample in {batches} batches per rank: {why}; no optimiser "
            f"update was taken and no checkpoint written for it: repair or remove the unreadable inputs"
        )

    def _check_finite(self, step: int) -> None:
        """Collective: raise :class:`TrainingDiverged` if a weight, buffer or optimiser state is non-finite."""
        names = {p: n for n, p in self.raw_model.named_parameters()}
        bad = non_finite(self.raw_model.state_dict().items())  # a sharded tensor: this rank's shard
        bad += non_finite((f"optimizer {k} of {names.get(p, '?')}", v)
                          for p, st in self.optimizer.state.items() for k, v in st.items())
        if self._sum(float(bool(bad)))[0]:
            shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
            raise self._diverged(step, f"non-finite values in {shown or 'another rank'}")

    # ------------------------------------------------------------------ preparation
    def _setup_logging(self) -> None:
        if self.dist.is_main and not logging.getLogger().handlers and not logger.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("[%(asctime)s] %(message)s", "%H:%M:%S"))
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)

    def _resume_checkpoint(self) -> dict[str, Any] | None:
        """``last.pt`` when resuming (None for a new run); refuses to overwrite an existing run."""
        cfg = self.cfg
        last = checkpoint_dir(self.out) / "last.pt"
        ckpt = None
        if cfg.resume and last.is_file():
            try:
                ckpt = load_checkpoint(last)
            except CheckpointError as e:
                raise CheckpointError(f"cannot resume: {e}; {self._best_hint(last)}") from e
            self._last_good = (last, ckpt["step"])
        elif cfg.resume:
            self._warn("resume requested but %s does not exist: starting a new run", last)
        elif last.is_file():
            raise FileExistsError(
                f"{last} exists: continue that run with --resume (train.resume=true in a config), "
                f"or choose another --out directory (train.out)"
            )
        barrier()
        return ckpt

    @staticmethod
    def _best_hint(last: Path) -> str:
        best = last.with_name("best.pt")
        if not best.is_file():
            return f"there is no {best.name} beside it: start a new run in another --out directory"
        try:
            b = load_checkpoint(best)
        except CheckpointError:
            return f"{best} is not readable either: start a new run in another --out directory"
        return (f"{best} is readable (step {b['step']}, epoch {b['epoch']}): start a new run from its weights "
                f"with --init {best} (train.init) and another --out, or copy it over {last} and --resume from "
                f"its step with fresh optimiser state")

    def _prepare(self) -> None:
        """Device, resume checkpoint, model, optimiser, sampler, run plan, schedule, restore, DDP wrap,
        data-loader workers, run directory, start-of-run log lines."""
        cfg, d = self.cfg, self.dist
        self._setup_logging()
        if self.val_dataset is not None and len(self.val_dataset) == 0:
            raise NoUsableSamples("the validation dataset is empty (0 samples): evaluation would report "
                                  "metrics over nothing; give a split with samples, or train without one")
        self._session_t0 = time.time()
        self.device = d.device
        ckpt = self._resume_checkpoint()

        seed_everything(cfg.seed + d.rank)
        self.parallel = parallel_mode(cfg.parallel, d, cfg.find_unused_parameters)
        self.parallel.shard(self.model)  # FSDP places each rank's shards on its device, never the whole model
        self.raw_model = self.model.to(self.device)
        self.raw_model.train()
        self.optimizer = build_optimizer(self.raw_model, cfg.optim)
        self.optimizer.zero_grad(set_to_none=True)
        self.sampler = self.sampler_factory(self.train_dataset, True, cfg.seed, d.rank, d.world_size)
        self.plan = plan_run(len(self.sampler), d.world_size, cfg)
        self.scheduler = LRSchedule(self.optimizer, cfg.sched, cfg.optim.lr, self.plan.steps_per_epoch, cfg.epochs)
        self.amp_dtype = amp_dtype(cfg.amp, self.device)
        self.scaler = make_grad_scaler(self.device, self.amp_dtype)
        if ckpt is not None:
            self._restore(ckpt)
        self.train_model = self.parallel.wrap(self.raw_model)
        self.eval_model = self.raw_model
        if cfg.compile:
            self.train_model = CompiledOrEager(self.train_model)
            self.eval_model = self.train_model if self.train_model.eager is self.raw_model else CompiledOrEager(
                self.raw_model)
        self._workers = cfg.num_workers
        cores = available_cores()
        if cfg.num_workers > cores:
            self._warn("train.num_workers=%d capped at %d, the CPU cores this process may use", cfg.num_workers,
                       cores)
            self._workers = cores
        self._open_run_dir(resumed=ckpt is not None)
        self._show_bar = progress_enabled(cfg.progress, d.is_main)
        self._line_t = time.perf_counter()
        self._info("training on %s: %s", self.device, self.plan.describe(cfg))
        for line in self.plan.warnings(cfg, self.scheduler.warmup):
            self._warn(line)
        self._stop = cfg.max_steps is not None and self.state.step >= cfg.max_steps
        self._on_batch = getattr(self.task, "on_batch", None)
        self._after_step = getattr(self.task, "after_optimizer_step", None)

    def _open_run_dir(self, resumed: bool) -> None:
        d, s = self.dist, self.state
        if d.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            removed = [*remove_orphaned_temp_files(self.out), *remove_orphaned_temp_files(checkpoint_dir(self.out))]
            if removed:
                self._warn("removed %d temp file(s) left by killed writes: %s", len(removed),
                           describe_paths([str(p) for p in removed]))
            if self.run_config is not None or not (self.out / "config.yaml").exists():
                dump_config(self.run_config if self.run_config is not None else self.cfg, self.out / "config.yaml")
        self.metrics = MetricsLogger(self.out, d.is_main, s.step if resumed else None, self.cfg.tensorboard)

    # ------------------------------------------------------------------ checkpoints
    def _rank_state(self) -> dict[str, Any]:
        return {"rng": get_rng_state(), "meter": self.meter.state_dict(),
                "skips": {"train": self.train_skips.state_dict(), "val": self.val_skips.state_dict()}}

    def _gather_state(self, full: bool) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
        """Collective: the model's (and with ``full`` the optimiser's) full state dict, valid on rank 0."""
        model = self.parallel.model_state_dict(self.raw_model)
        return model, self.parallel.optimizer_state_dict(self.raw_model, self.optimizer) if full else None

    def _payload(self, state: RunState, rank_states: list[dict[str, Any]], elapsed_s: float,
                 model: dict[str, torch.Tensor], optimizer: dict[str, Any] | None,
                 buffers: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
        """With ``optimizer``: ``last.pt`` (all resume needs); otherwise ``best.pt`` (no optimiser / RNG state)."""
        cfg, d = self.cfg, self.dist
        full = optimizer is not None
        model = {**model, **(buffers or {})}
        payload = {
            "kind": "last" if full else "best",
            "model": model,
            "step": state.step,
            "epoch": state.epoch,
            "batches_done": state.batches_done,
            "samples_done": state.batches_done * cfg.batch_size,
            "world_size": d.world_size,
            "parallel": self.parallel.name,
            "batch_size": cfg.batch_size,
            "accum_steps": cfg.accum_steps,
            "sampler": {"epoch": state.epoch, "start": state.batches_done * cfg.batch_size},
            "best": dict(state.best),
            "last_eval": dict(state.last_eval),
            "totals": state.totals(),
            "elapsed_s": elapsed_s,
            "config": config_to_dict(cfg),
        }
        if hasattr(self.task, "state_dict"):
            payload["task"] = self.task.state_dict()
        if full:
            payload.update(optimizer=optimizer, scheduler=self.scheduler.state_dict(),
                           scaler=self.scaler.state_dict(), rank_states=rank_states)
        return payload if full else shareable_payload(payload)

    def _elapsed(self) -> float:
        return self.state.elapsed_s + (time.time() - self._session_t0)

    def _save(self, *names: str) -> None:
        """Collective: every rank contributes its RNG / meter / skip state; rank 0 writes ``names`` in order
        (best first: a kill in between never leaves last ahead of best). Weights must be checked first."""
        rank_states = all_gather_object(self._rank_state())
        model, optimizer = self._gather_state(full="last.pt" in names)
        ckdir = checkpoint_dir(self.out)
        if self.dist.is_main:
            for name in names:
                save_checkpoint(self._payload(self.state, rank_states, self._elapsed(), model,
                                              optimizer if name == "last.pt" else None), ckdir / name)
        if "last.pt" in names:
            self._last_good = (ckdir / "last.pt", self.state.step)

    def _snapshot(self) -> dict[str, Any]:
        """Collective: the state after this optimiser step, written at the next one once its loss shows the
        weights are good. Until that update, parameters, optimiser, scheduler, scaler and task state stay as
        they are; the buffers (e.g. BatchNorm statistics), RNG streams and counters move on, so they are copied
        (on rank 0, the writer)."""
        self._check_finite(self.state.step)
        rank_states = all_gather_object(self._rank_state())
        snap: dict[str, Any] = {"step": self.state.step}
        if self.dist.is_main:
            params = {n for n, _ in self.raw_model.named_parameters()}
            buffers = {k: v.detach().clone() for k, v in self.raw_model.state_dict().items() if k not in params}
            snap["payload"] = {"state": copy.deepcopy(self.state), "rank_states": rank_states,
                               "elapsed_s": self._elapsed(), "buffers": buffers}
        return snap

    def _write_pending(self) -> None:
        pending, self._pending = self._pending, None
        last = checkpoint_dir(self.out) / "last.pt"
        t0 = time.perf_counter()
        model, optimizer = self._gather_state(full=True)
        if "payload" in pending:
            save_checkpoint(self._payload(model=model, optimizer=optimizer, **pending["payload"]), last)
            self._clock += time.perf_counter() - t0  # checkpoint writes are not training time
        self._last_good = (last, pending["step"])

    def _check_fits(self, saved: dict[str, torch.Tensor]) -> None:
        """A resumed model must be the one the run started with: one line naming what differs otherwise."""
        own = self.raw_model.state_dict()
        diff = [f"{k} missing" for k in own if k not in saved] + [f"{k} unexpected" for k in saved if k not in own]
        diff += [f"{k} {tuple(saved[k].shape)} vs {tuple(own[k].shape)}" for k in saved
                 if k in own and saved[k].shape != own[k].shape]
        if diff:
            last = self._last_good[0]
            raise CheckpointError(
                f"cannot resume: {last} holds another model than this run's ({len(diff)} tensors differ: "
                f"{', '.join(diff[:3])}{', ...' if len(diff) > 3 else ''}): the model or data settings changed since "
                f"the run started; resume with those of {self.out / 'config.yaml'}, or start a new run (another "
                f"--out) from its weights with --init {last}")

    def _restore(self, ckpt: dict[str, Any]) -> None:
        cfg, d, s = self.cfg, self.dist, self.state
        same_layout = (ckpt["world_size"], ckpt["batch_size"], ckpt["accum_steps"]) == (
            d.world_size, cfg.batch_size, cfg.accum_steps)
        if ckpt["batches_done"] and not same_layout:
            raise ConfigError(
                f"cannot resume mid-epoch with a different layout: checkpoint world_size/batch_size/accum "
                f"{ckpt['world_size']}/{ckpt['batch_size']}/{ckpt['accum_steps']}, this run "
                f"{d.world_size}/{cfg.batch_size}/{cfg.accum_steps}"
            )
        self._check_fits(ckpt["model"])
        weights_only = "optimizer" not in ckpt
        written_by = ckpt.get("parallel", "ddp")
        if not weights_only and written_by != self.parallel.name:
            raise ConfigError(f"cannot resume: {self._last_good[0]} was written with train.parallel={written_by} "
                             f"(its optimiser state is laid out for it); resume with train.parallel={written_by}")
        self.parallel.load_model_state_dict(self.raw_model, ckpt["model"])
        if weights_only:  # a best.pt copied over last.pt
            self.scheduler.load_state_dict({"last_step": ckpt["step"]})
        else:
            self.parallel.load_optimizer_state_dict(self.raw_model, self.optimizer, ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
            self.scaler.load_state_dict(ckpt["scaler"])
        if hasattr(self.task, "load_state_dict") and "task" in ckpt:
            self.task.load_state_dict(ckpt["task"])
        s.step, s.epoch, s.batches_done = ckpt["step"], ckpt["epoch"], ckpt["batches_done"]
        s.best, s.last_eval, s.elapsed_s = dict(ckpt["best"]), dict(ckpt["last_eval"]), ckpt["elapsed_s"]
        s.load_totals(ckpt.get("totals", {}))
        rank_states = ckpt.get("rank_states", [])
        if len(rank_states) == d.world_size:
            mine = rank_states[d.rank]
            set_rng_state(mine["rng"])
            self.meter.load_state_dict(mine["meter"])
            if "skips" in mine:  # checkpoints of engine versions before the skip counters count from here
                self.train_skips.load_state_dict(mine["skips"]["train"])
                self.val_skips.load_state_dict(mine["skips"]["val"])
        else:
            if weights_only:
                self._warn("%s holds weights only (a copy of best.pt?): optimiser and lr-schedule state restart "
                           "at step %d; the resume is not bit-exact", self._last_good[0], s.step)
            else:
                self._warn("checkpoint has %d ranks, this run %d: RNG streams are re-seeded (resume not exact)",
                           len(rank_states), d.world_size)
            seed_everything(cfg.seed + d.rank + s.step)
            if d.rank == 0:  # every rank's run totals are kept on rank 0
                for r in (r for r in rank_states if "skips" in r):
                    for counter, key in ((self.train_skips, "train"), (self.val_skips, "val")):
                        other = SkipCounter()
                        other.load_state_dict(r["skips"][key])
                        counter.merge(other)
        self._info("resumed from step %d (epoch %d, batch %d of the epoch)", s.step, s.epoch, s.batches_done)

    # ------------------------------------------------------------------ evaluation
    def _evaluate(self) -> tuple[dict[str, float], int]:
        """The task's metrics on the validation set and the number of inputs skipped (all ranks)."""
        cfg, d, s = self.cfg, self.dist, self.state
        sampler = ResumableSampler(len(self.val_dataset), shuffle=False, seed=cfg.seed, rank=d.rank,
                                   world_size=d.world_size, pad=False)
        if hasattr(self.val_dataset, "set_epoch"):
            self.val_dataset.set_epoch(0)
        loader = self._loader(self.val_dataset, sampler, cfg.eval_batch_size or cfg.batch_size,
                              self.val_collate_fn, drop_last=False, seed=cfg.seed)
        bar = ProgressBar(len(loader), 0, f"eval at step {s.step}", cfg.throughput_unit, self._show_bar)
        if not bar.enabled:
            self._info("evaluating at step %d: %d validation samples, %d batches on this rank",
                       s.step, len(self.val_dataset), len(loader))
        t0 = time.perf_counter()
        self.val_skips.start_period()
        rng = get_rng_state()  # evaluation must not shift the training RNG streams
        self.raw_model.eval()
        try:
            with self.parallel.evaluation(self.raw_model), autocast(self.device, self.amp_dtype):
                metrics = self.task.evaluate(self.eval_model, self._device_batches(loader, self.val_skips, bar))
        finally:
            self.raw_model.train()
            set_rng_state(rng)
            bar.close()
        metrics = {k: float(v) for k, v in metrics.items()}
        if self.task.primary_metric not in metrics:
            raise KeyError(
                f"task.evaluate returned {sorted(metrics)}, without the primary metric "
                f"'{self.task.primary_metric}'"
            )
        skipped = int(self._sum(self.val_skips.current)[0])
        s.val_skipped += skipped
        self._info("eval at step %d (%.1fs): %s", s.step, time.perf_counter() - t0,
                   ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        return metrics, skipped

    # ------------------------------------------------------------------ training
    def _forward_backward(self, batch: Any, sync: bool) -> None:
        """One micro-batch: forward under autocast, backward of ``loss / accum_steps`` (DDP all-reduces
        the gradients only when ``sync``, at the last micro-batch of the accumulation window)."""
        if self._on_batch is not None:
            batch = self._on_batch(batch)
        with self.parallel.sync_gradients(sync):
            with autocast(self.device, self.amp_dtype):
                loss, logs, num = self.task.train_step(self.train_model, batch)
            self.scaler.scale(loss / self.cfg.accum_steps).backward()
        self.window.add(loss, num)
        if num:
            self.meter.add_logs(logs)

    def _update(self, micro: int) -> float | None:
        """Step on the accumulated gradients of ``micro`` micro-batches; returns the grad norm if clipped."""
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        if micro < self.cfg.accum_steps:  # short group at the end of an epoch: grads are a mean over micro
            for p in params:
                if p.grad is not None:
                    p.grad.mul_(self.cfg.accum_steps / micro)
        norm = None
        if self.cfg.clip_grad is not None:
            self.scaler.unscale_(self.optimizer)
            norm = self.parallel.clip_grad_norm(params, self.cfg.clip_grad)
            if not math.isfinite(norm) and self.amp_dtype != torch.float16:  # fp16: the scaler skips the step
                raise self._diverged(self.state.step + 1, f"the gradient norm is {norm}")
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return norm

    def _skip_update(self) -> None:
        """An accumulation window without a sample on any rank: no update (weight decay and momentum would
        still move the weights)."""
        self.optimizer.zero_grad(set_to_none=True)
        if self._warned_empty_epoch != self.state.epoch:
            self._warned_empty_epoch = self.state.epoch
            self._warn("step %d: no usable sample in its accumulation window (every input skipped, e.g. %s): "
                       "no optimiser update", self.state.step + 1, self.train_skips.describe_current())

    def _optimizer_step(self, last_batch: bool, bar: ProgressBar) -> bool:
        """End of an accumulation window: the loss check (one sync), the pending checkpoint, the update
        (none without a sample), schedule, hooks, logging, the next checkpoint; True at ``max_steps``."""
        cfg, s = self.cfg, self.state
        micro = self.window.micro
        loss, samples, usable = self.window.reduce()
        self.window.reset()
        if not math.isfinite(loss) and self.amp_dtype != torch.float16:  # fp16: the grad scaler handles it
            raise self._diverged(s.step + 1, f"the training loss is {loss}")
        if self._pending is not None:
            self._write_pending()
        grad_norm = None
        if samples:
            grad_norm = self._update(micro)
        else:
            self._skip_update()
        s.step += 1
        self.scheduler.step()
        if samples and self._after_step is not None:
            self._after_step(self.raw_model, s.step)
        s.add_step(loss, samples, usable)
        self.meter.add_step(loss, samples, usable)
        stop = cfg.max_steps is not None and s.step >= cfg.max_steps
        if s.step % cfg.log_every == 0 or last_batch or stop:
            self._log_train(grad_norm, bar)
        elif not bar.enabled and cfg.log_interval_s and time.perf_counter() - self._line_t >= cfg.log_interval_s:
            self._progress_line(*self._window_stats())  # a line between logged steps, not a metrics event
        if stop:
            self._stop = True
            return True
        if cfg.checkpoint_every and s.step % cfg.checkpoint_every == 0 and not last_batch:
            self._tick()
            self._pending = self._snapshot()
        return False

    def _tick(self) -> None:
        """Add the time since the last tick to the training time."""
        now = time.perf_counter()
        self.state.train_time_s += now - self._clock
        self._clock = now

    def _window_stats(self) -> tuple[float | None, float, float, float]:
        """``(mean loss or None, samples/s, lr, seconds)`` of the logging window so far (no sync)."""
        m = self.meter
        elapsed = time.perf_counter() - m.t0
        return (m.loss / m.usable if m.usable else None, m.samples / max(elapsed, 1e-9),
                self.scheduler.lr_at(self.state.step - 1), elapsed)

    def _progress_line(self, loss: float | None, rate: float, lr: float, elapsed: float) -> None:
        s, total = self.state, self.plan.total_steps
        eta = (total - s.step) * elapsed / max(1, self.meter.steps)
        self._info("epoch %.2f step %d/%d loss %s lr %.3e %.1f %s/s eta %s", self._epoch_position(), s.step, total,
                   "n/a" if loss is None else f"{loss:.4f}", lr, rate, self.cfg.throughput_unit,
                   time.strftime("%H:%M:%S", time.gmtime(eta)))
        self._line_t = time.perf_counter()

    def _log_train(self, grad_norm: float | None, bar: ProgressBar) -> None:
        m, s = self.meter, self.state
        keys = sorted(set().union(*all_gather_object(sorted(m.logs))))  # a rank may have had no sample
        vals = self._sum(*(float(m.logs.get(k, 0.0)) for k in keys), self.train_skips.total)
        loss, rate, lr, elapsed = self._window_stats()
        event = {"step": s.step, "epoch": round(self._epoch_position(), 6), "lr": lr, "loss": loss,
                 "throughput": rate}
        if loss is None:  # no usable sample in the window
            del event["loss"]
        else:
            s.last_loss = loss
        event.update({k: vals[i] / max(1, m.usable) for i, k in enumerate(keys)})
        if grad_norm is not None:
            event["grad_norm"] = grad_norm
        event["skipped"] = int(vals[-1])
        self.metrics.log(event)
        if bar.enabled:
            bar.set_stats(loss, rate, lr)
        else:
            self._progress_line(loss, rate, lr, elapsed)
        m.reset()

    def _run_epoch(self) -> None:
        """Train the rest of the current epoch (all of it unless resumed mid-epoch), then end it."""
        cfg, d, s = self.cfg, self.dist, self.state
        nb = self.plan.batches_per_epoch
        self.sampler.set_epoch(s.epoch)
        self.sampler.set_start(s.batches_done * cfg.batch_size)
        if hasattr(self.train_dataset, "set_epoch"):
            self.train_dataset.set_epoch(s.epoch)
        loader = self._loader(self.train_dataset, self.sampler, cfg.batch_size, self.collate_fn, cfg.drop_last,
                              seed=(cfg.seed * 100_003 + s.epoch) * 1_009 + d.rank)
        bar = ProgressBar(nb, s.batches_done, f"epoch {s.epoch + 1}/{cfg.epochs}", cfg.throughput_unit,
                          self._show_bar, leave=True)
        self.window.reset()
        self._clock = time.perf_counter()
        for batch in self._device_batches(loader, self.train_skips):
            s.batches_done += 1
            last_batch = s.batches_done >= nb
            sync = self.window.micro + 1 == cfg.accum_steps or last_batch
            self._forward_backward(batch, sync)
            bar.update()
            if sync and self._optimizer_step(last_batch, bar):
                break
        self._tick()
        bar.close()
        epoch_done = s.batches_done >= nb
        if epoch_done:
            s.epoch += 1
            s.batches_done = 0
        self._end_of_epoch_or_stop(epoch_done)

    def _end_of_epoch_or_stop(self, epoch_done: bool) -> None:
        """Epoch statistics, evaluation when due, ``best.pt`` when better, ``last.pt``."""
        cfg, s = self.cfg, self.state
        self._pending = None  # superseded by the checkpoint below
        if (epoch_done or s.batches_done) and s.epoch_samples == 0:
            raise self._no_training_samples(epoch_done)
        self._check_finite(s.step)
        finished = self._stop or s.epoch >= cfg.epochs
        due = finished or (epoch_done and cfg.eval_every > 0 and s.epoch % cfg.eval_every == 0)
        event: dict[str, Any] = {"step": s.step, "epoch": round(self._epoch_position(), 6)}
        if epoch_done:
            event.update({"train/loss": s.epoch_loss / s.epoch_usable, "train/samples": s.epoch_samples,
                          "train/skipped": int(self._sum(self.train_skips.current)[0])})
            s.new_epoch()
            self.train_skips.start_period()
        names = ["last.pt"]
        if due and self.val_dataset is not None:
            metrics, skipped = self._evaluate()
            event.update({f"val/{k}": v for k, v in metrics.items()})
            event["val/skipped"] = skipped
            if metrics.get("num_samples", 1) == 0:
                self.metrics.log(event)
                self._save("last.pt")
                raise NoUsableSamples(
                    f"evaluation at step {s.step} had no usable sample: {skipped} validation inputs were skipped "
                    f"as unreadable (e.g. {self.val_skips.describe_current()}); {self._last_good[0]} "
                    f"was saved, best.pt was not: repair the validation data, then continue with --resume"
                )
            for k in (self.task.primary_metric, "loss"):
                if not math.isfinite(metrics.get(k, 0.0)):
                    raise self._diverged(s.step, f"the evaluation's {k} is {metrics[k]}")
            s.last_eval = metrics
            value = metrics[self.task.primary_metric]
            better = (not s.best or (value > s.best["value"] if self.task.higher_is_better
                                     else value < s.best["value"]))
            if better:
                s.best = {"value": value, "step": s.step, "epoch": s.epoch}
                names.insert(0, "best.pt")
        if len(event) > 2:
            self.metrics.log(event)
        self._save(*names)

    # ------------------------------------------------------------------ the run
    def fit(self) -> dict[str, Any]:
        """Train to ``cfg.epochs`` (or ``cfg.max_steps``); returns the run summary (also ``summary.json``)."""
        self.dist = init_distributed(self.cfg.device)
        try:
            return self._fit()
        finally:
            if self.dist.initialized_here and dist.is_initialized():
                dist.destroy_process_group()

    def _fit(self) -> dict[str, Any]:
        self._prepare()
        try:
            while self.state.epoch < self.cfg.epochs and not self._stop:
                self._run_epoch()
        except KeyboardInterrupt:
            self._warn("%s", self._interrupted())
            raise
        finally:
            self.metrics.close()
        return self._summary()

    def _summary(self) -> dict[str, Any]:
        """``summary.json``. Skips are counted as ``*_inputs`` (every occurrence, all epochs / evaluations)
        and ``*_files`` (distinct paths; inputs reported without a path are not in it)."""
        s, d = self.state, self.dist
        train_total = int(self._sum(self.train_skips.total)[0])
        ranks = all_gather_object((sorted(self.train_skips.files), sorted(self.val_skips.files),
                                   self.train_skips.examples, self.val_skips.examples))
        wall = time.time() - self._session_t0
        summary = {
            "primary_metric": self.task.primary_metric,
            "higher_is_better": self.task.higher_is_better,
            "best_metric": s.best.get("value"),
            "best_step": s.best.get("step"),
            "best_epoch": s.best.get("epoch"),
            "final_metrics": s.last_eval,
            "steps": s.step,
            "epochs": self._epoch_position(),
            "world_size": d.world_size,
            "samples_seen": s.samples_seen,
            "train_loss_last": s.last_loss,
            "train_loss_mean": s.run_loss / s.run_usable if s.run_usable else None,
            "throughput_mean": s.samples_seen / s.train_time_s if s.train_time_s > 0 else None,
            "throughput_unit": f"{self.cfg.throughput_unit}/s",
            "skipped_inputs": train_total,
            "skipped_files": len(set().union(*(r[0] for r in ranks))),
            "skipped_examples": [p for r in ranks for p in r[2]][:20],
            "val_skipped_inputs": s.val_skipped,
            "val_skipped_files": len(set().union(*(r[1] for r in ranks))),
            "val_skipped_examples": [p for r in ranks for p in r[3]][:20],
            "wall_time_s": wall,
            "total_train_time_s": s.elapsed_s + wall,
        }
        if d.is_main:
            atomic_write_text(self.out / "summary.json", json.dumps(summary, indent=2) + "\n")
        return summary
