"""Generic, task-agnostic training loop: DDP, accumulation, AMP, exact mid-epoch resume.

The run directory ``cfg.out`` receives ``config.yaml``, ``metrics.jsonl``, ``checkpoints/last.pt``,
``checkpoints/best.pt``, ``summary.json`` (and ``tensorboard/`` when tensorboard is installed); only
rank 0 writes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Sampler

from ..data.samplers import ResumableSampler
from ..utils.atomic import atomic_write_text
from .checkpoint import checkpoint_dir, load_checkpoint, save_checkpoint
from .config import config_to_dict, dump_config
from .distributed import DistInfo, all_gather_object, all_reduce_sum, barrier, init_distributed
from .metrics_log import MetricsLogger
from .optim import build_optimizer
from .precision import amp_dtype, autocast, make_grad_scaler
from .progress import ProgressBar, progress_enabled
from .rng import get_host_rng_state, get_rng_state, seed_everything, set_host_rng_state, set_rng_state
from .schedule import LRSchedule
from .task import Task
from .train_config import TrainConfig

__all__ = ["Trainer", "SamplerFactory", "move_to_device"]

logger = logging.getLogger("spatiotemporal.engine")

SamplerFactory = Callable[[Dataset, bool, int, int, int], Sampler]
_MAX_SKIPPED_EXAMPLES = 20


def _default_sampler_factory(dataset: Dataset, shuffle: bool, seed: int, rank: int, world: int) -> Sampler:
    return ResumableSampler(len(dataset), shuffle=shuffle, seed=seed, rank=rank, world_size=world)


def move_to_device(batch: Any, device: torch.device, non_blocking: bool = False) -> Any:
    """Tensors anywhere in nested dicts / lists / tuples go to ``device``; other values are kept."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, dict):
        return {k: move_to_device(v, device, non_blocking) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(move_to_device(v, device, non_blocking) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(v, device, non_blocking) for v in batch)
    return batch


def _rng_isolated(iterable: Iterable[Any]) -> Iterator[Any]:
    """Iterate without letting in-process loading (``seed_item`` reseeds the globals) touch the
    main process's Python / NumPy / torch RNG streams."""
    it = iter(iterable)
    while True:
        state = get_host_rng_state()
        try:
            item = next(it)
        except StopIteration:
            return
        finally:
            set_host_rng_state(state)
        yield item


class _DeviceLoader:
    """Iterable over a DataLoader's batches with ``"skipped"`` counted and removed and tensors moved to
    the trainer's device; ``len()`` and ``dataset`` as the DataLoader's."""

    def __init__(self, trainer: Trainer, loader: DataLoader) -> None:
        self.trainer, self.loader, self.dataset = trainer, loader, loader.dataset

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        t = self.trainer
        for batch in t._iterate(self.loader):
            yield move_to_device(t._count_skipped(batch), t.device, non_blocking=t.device.type == "cuda")


class _Meter:
    """Sums over the current logging window (float64, so a resumed window adds up identically)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.loss: torch.Tensor | float = 0.0
        self.logs: dict[str, torch.Tensor | float] = {}
        self.micro = 0
        self.samples = 0
        self.steps = 0
        self.t0 = time.perf_counter()

    def add(self, loss: torch.Tensor, logs: dict[str, Any], n: int) -> None:
        self.loss = self.loss + loss.detach().double()
        for k, v in logs.items():
            v = v.detach().double() if isinstance(v, torch.Tensor) else float(v)
            self.logs[k] = self.logs.get(k, 0.0) + v
        self.micro += 1
        self.samples += int(n)

    def state_dict(self) -> dict[str, Any]:
        return {"loss": float(self.loss), "logs": {k: float(v) for k, v in self.logs.items()},
                "micro": self.micro, "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.reset()  # samples and time restart: throughput covers only what this process did
        self.loss = torch.tensor(state["loss"], dtype=torch.float64)
        self.logs = {k: torch.tensor(v, dtype=torch.float64) for k, v in state["logs"].items()}
        self.micro, self.steps = state["micro"], state["steps"]


@dataclass
class _RunState:
    step: int = 0
    epoch: int = 0  # completed epochs
    batches_done: int = 0  # batches of the current epoch already trained (this rank)
    best: dict[str, Any] = field(default_factory=dict)  # {"value", "step", "epoch"}
    last_eval: dict[str, float] = field(default_factory=dict)
    skipped: int = 0  # this rank, whole run
    skipped_epoch: int = 0  # this rank, current epoch
    skipped_examples: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0  # training wall time of earlier sessions


class Trainer:
    """Train ``model`` with ``task`` on ``train_dataset``; evaluate on ``val_dataset`` at epoch ends.

    Args:
        model: the bare ``nn.Module`` (the trainer moves it to the device and wraps it in DDP).
        task: see :class:`~spatiotemporal.engine.task.Task`.
        train_dataset / val_dataset: map-style datasets (``val_dataset`` may be None); ``set_epoch(epoch)``
            is called on them before each epoch's loader is created when they have it.
        cfg: :class:`TrainConfig`.
        collate_fn / val_collate_fn: DataLoader collate functions (``val_collate_fn`` defaults to
            ``collate_fn``). A dict batch may carry ``"skipped"``: the inputs the loader skipped.
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
                raise ValueError(f"train.{name} must be >= 1, got {getattr(cfg, name)}")
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
        self.state = _RunState()
        self.meter = _Meter()

    # ------------------------------------------------------------------ helpers
    def _info(self, msg: str, *args: Any) -> None:
        if self.dist is not None and self.dist.is_main:
            logger.info(msg, *args)

    def _loader(self, dataset: Dataset, sampler: Sampler, batch_size: int, collate: Callable | None,
                drop_last: bool, seed: int) -> DataLoader:
        return DataLoader(
            dataset, batch_size=batch_size, sampler=sampler, num_workers=self.cfg.num_workers,
            collate_fn=collate, drop_last=drop_last, pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(seed),  # never draw worker seeds from the global RNG
        )

    def _iterate(self, loader: DataLoader) -> Iterable[Any]:
        return _rng_isolated(loader) if self.cfg.num_workers == 0 else loader

    def _count_skipped(self, batch: Any) -> Any:
        if not (isinstance(batch, dict) and "skipped" in batch):
            return batch
        batch = dict(batch)
        skipped = batch.pop("skipped")
        paths = [str(p) for p in skipped] if isinstance(skipped, (list, tuple)) else []
        n = len(paths) if isinstance(skipped, (list, tuple)) else int(skipped)
        self.state.skipped += n
        self.state.skipped_epoch += n
        room = _MAX_SKIPPED_EXAMPLES - len(self.state.skipped_examples)
        self.state.skipped_examples.extend(paths[: max(0, room)])
        return batch

    def _device_batches(self, loader: DataLoader) -> _DeviceLoader:
        return _DeviceLoader(self, loader)

    # ------------------------------------------------------------------ checkpoints
    def _payload(self, rank_states: list[dict[str, Any]]) -> dict[str, Any]:
        s = self.state
        payload = {
            "model": self.raw_model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": s.step,
            "epoch": s.epoch,
            "batches_done": s.batches_done,
            "samples_done": s.batches_done * self.cfg.batch_size,
            "world_size": self.dist.world_size,
            "batch_size": self.cfg.batch_size,
            "accum_steps": self.cfg.accum_steps,
            "sampler": {"epoch": s.epoch, "start": s.batches_done * self.cfg.batch_size},
            "best": dict(s.best),
            "last_eval": dict(s.last_eval),
            "skipped_examples": list(s.skipped_examples),
            "elapsed_s": s.elapsed_s + (time.time() - self._session_t0),
            "rank_states": rank_states,
            "config": config_to_dict(self.cfg),
        }
        if hasattr(self.task, "state_dict"):
            payload["task"] = self.task.state_dict()
        return payload

    def _save(self, *names: str) -> None:
        """Collective: every rank contributes its RNG / meter state; rank 0 writes."""
        mine = {"rng": get_rng_state(), "meter": self.meter.state_dict(),
                "skipped": self.state.skipped, "skipped_epoch": self.state.skipped_epoch}
        rank_states = all_gather_object(mine)
        if self.dist.is_main:
            ckdir = checkpoint_dir(self.out)
            save_checkpoint(self._payload(rank_states), *(ckdir / name for name in names))

    def _restore(self, ckpt: dict[str, Any]) -> None:
        cfg, d, s = self.cfg, self.dist, self.state
        same_layout = (ckpt["world_size"], ckpt["batch_size"], ckpt["accum_steps"]) == (
            d.world_size, cfg.batch_size, cfg.accum_steps)
        if ckpt["batches_done"] and not same_layout:
            raise ValueError(
                f"cannot resume mid-epoch with a different layout: checkpoint world_size/batch_size/accum "
                f"{ckpt['world_size']}/{ckpt['batch_size']}/{ckpt['accum_steps']}, this run "
                f"{d.world_size}/{cfg.batch_size}/{cfg.accum_steps}"
            )
        self.raw_model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        if hasattr(self.task, "load_state_dict") and "task" in ckpt:
            self.task.load_state_dict(ckpt["task"])
        s.step, s.epoch, s.batches_done = ckpt["step"], ckpt["epoch"], ckpt["batches_done"]
        s.best, s.last_eval = dict(ckpt["best"]), dict(ckpt["last_eval"])
        s.skipped_examples, s.elapsed_s = list(ckpt["skipped_examples"]), ckpt["elapsed_s"]
        rank_states = ckpt["rank_states"]
        if len(rank_states) == d.world_size:
            mine = rank_states[d.rank]
            set_rng_state(mine["rng"])
            self.meter.load_state_dict(mine["meter"])
            s.skipped, s.skipped_epoch = mine["skipped"], mine["skipped_epoch"]
        else:
            logger.warning("checkpoint has %d ranks, this run %d: RNG streams are re-seeded (resume not exact)",
                           len(rank_states), d.world_size)
            seed_everything(cfg.seed + d.rank + s.step)
            s.skipped = sum(r["skipped"] for r in rank_states) if d.rank == 0 else 0
        self._info("resumed from step %d (epoch %d, batch %d of the epoch)", s.step, s.epoch, s.batches_done)

    # ------------------------------------------------------------------ evaluation
    def _evaluate(self) -> dict[str, float]:
        cfg, d = self.cfg, self.dist
        sampler = ResumableSampler(len(self.val_dataset), shuffle=False, seed=cfg.seed, rank=d.rank,
                                   world_size=d.world_size, pad=False)
        if hasattr(self.val_dataset, "set_epoch"):
            self.val_dataset.set_epoch(0)
        loader = self._loader(self.val_dataset, sampler, cfg.eval_batch_size or cfg.batch_size,
                              self.val_collate_fn, drop_last=False, seed=cfg.seed)
        rng = get_rng_state()  # evaluation must not shift the training RNG streams
        self.raw_model.eval()
        try:
            with torch.inference_mode(), autocast(self.device, self.amp_dtype):
                metrics = self.task.evaluate(self.raw_model, self._device_batches(loader))
        finally:
            self.raw_model.train()
            set_rng_state(rng)
        metrics = {k: float(v) for k, v in metrics.items()}
        if self.task.primary_metric not in metrics:
            raise KeyError(
                f"task.evaluate returned {sorted(metrics)}, without the primary metric "
                f"'{self.task.primary_metric}'"
            )
        return metrics

    # ------------------------------------------------------------------ training
    def _optimizer_step(self, micro: int) -> float | None:
        """Step on the accumulated gradients of ``micro`` micro-batches; returns the grad norm if clipped."""
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        if micro < self.cfg.accum_steps:  # short group at the end of an epoch: grads are a mean over micro
            for p in params:
                if p.grad is not None:
                    p.grad.mul_(self.cfg.accum_steps / micro)
        norm = None
        if self.cfg.clip_grad is not None:
            self.scaler.unscale_(self.optimizer)
            norm = float(torch.nn.utils.clip_grad_norm_(params, self.cfg.clip_grad))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return norm

    def _log_train(self, grad_norm: float | None, nb: int, total_steps: int, bar: ProgressBar) -> None:
        m, s = self.meter, self.state
        keys = sorted(m.logs)
        vals = torch.tensor([float(m.loss)] + [float(m.logs[k]) for k in keys]
                            + [m.micro, m.samples, s.skipped], dtype=torch.float64)
        vals = all_reduce_sum(vals)
        micro = max(1.0, float(vals[-3]))
        loss = float(vals[0]) / micro
        elapsed = time.perf_counter() - m.t0
        rate = float(vals[-2]) / max(elapsed, 1e-9)
        if not math.isfinite(loss) and self.amp_dtype != torch.float16:
            raise FloatingPointError(f"training loss is {loss} at step {s.step} (epoch {s.epoch})")
        lr = self.scheduler.lr_at(s.step - 1)
        epoch = s.epoch + s.batches_done / nb
        event = {"step": s.step, "epoch": round(epoch, 6), "lr": lr, "loss": loss, "throughput": rate}
        event.update({k: float(vals[1 + i]) / micro for i, k in enumerate(keys)})
        if grad_norm is not None:
            event["grad_norm"] = grad_norm
        event["skipped"] = int(vals[-1])
        self.metrics.log(event)
        if bar.enabled:
            bar.set_stats(loss, rate, lr)
        else:
            eta = (total_steps - s.step) * elapsed / max(1, m.steps)
            self._info("epoch %.2f step %d/%d loss %.4f lr %.3e %.1f %s/s eta %s", epoch, s.step, total_steps,
                       loss, lr, rate, self.cfg.throughput_unit, time.strftime("%H:%M:%S", time.gmtime(eta)))
        m.reset()

    def _end_of_epoch_or_stop(self, epoch_done: bool, stop: bool) -> None:
        cfg, s = self.cfg, self.state
        finished = stop or s.epoch >= cfg.epochs
        due = finished or (epoch_done and cfg.eval_every > 0 and s.epoch % cfg.eval_every == 0)
        event: dict[str, Any] = {"step": s.step, "epoch": round(s.epoch + s.batches_done / self._nb, 6)}
        if epoch_done:
            event["skipped_epoch"] = int(all_reduce_sum(torch.tensor([s.skipped_epoch], dtype=torch.float64))[0])
            s.skipped_epoch = 0
        names = ["last.pt"]
        if due and self.val_dataset is not None:
            metrics = self._evaluate()
            s.last_eval = metrics
            event.update({f"val/{k}": v for k, v in metrics.items()})
            value = metrics[self.task.primary_metric]
            better = (not s.best or (value > s.best["value"] if self.task.higher_is_better
                                     else value < s.best["value"]))
            if better:
                s.best = {"value": value, "step": s.step, "epoch": s.epoch}
                names.insert(0, "best.pt")  # best first: a kill in between never leaves last ahead of best
            self._info("eval at step %d: %s", s.step, ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        if len(event) > 2:
            self.metrics.log(event)
        self._save(*names)

    def fit(self) -> dict[str, Any]:
        """Train to ``cfg.epochs`` (or ``cfg.max_steps``); returns the run summary (also ``summary.json``)."""
        self.dist = init_distributed(self.cfg.device)
        try:
            return self._fit()
        finally:
            if self.dist.initialized_here and dist.is_initialized():
                dist.destroy_process_group()

    def _fit(self) -> dict[str, Any]:
        cfg, d = self.cfg, self.dist
        if d.is_main and not logging.getLogger().handlers and not logger.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("[%(asctime)s] %(message)s", "%H:%M:%S"))
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
        self._session_t0 = time.time()
        self.device = d.device
        last = checkpoint_dir(self.out) / "last.pt"
        ckpt = None
        if cfg.resume and last.is_file():
            ckpt = load_checkpoint(last)
        elif cfg.resume:
            if d.is_main:
                logger.warning("resume requested but %s does not exist: starting a new run", last)
        elif last.is_file():
            raise FileExistsError(
                f"{last} exists: set resume=true to continue that run, or choose another out directory"
            )
        barrier()

        seed_everything(cfg.seed + d.rank)
        self.raw_model = self.model.to(self.device)
        self.raw_model.train()
        self.optimizer = build_optimizer(self.raw_model, cfg.optim)
        self.optimizer.zero_grad(set_to_none=True)
        sampler = self.sampler_factory(self.train_dataset, True, cfg.seed, d.rank, d.world_size)
        n = len(sampler)
        self._nb = nb = n // cfg.batch_size if cfg.drop_last else math.ceil(n / cfg.batch_size)
        if nb == 0:
            raise ValueError(
                f"training set gives no batch: {n} samples per rank < batch_size {cfg.batch_size} (drop_last)"
            )
        steps_per_epoch = math.ceil(nb / cfg.accum_steps)
        total_steps = cfg.epochs * steps_per_epoch
        if cfg.max_steps is not None:
            total_steps = min(total_steps, cfg.max_steps)
        self.scheduler = LRSchedule(self.optimizer, cfg.sched, cfg.optim.lr, steps_per_epoch, cfg.epochs)
        self.amp_dtype = amp_dtype(cfg.amp, self.device)
        self.scaler = make_grad_scaler(self.device, self.amp_dtype)
        if ckpt is not None:
            self._restore(ckpt)
        s = self.state
        model = self.raw_model
        if d.world_size > 1:
            model = DistributedDataParallel(
                self.raw_model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=cfg.find_unused_parameters,
            )
        if d.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            if self.run_config is not None or not (self.out / "config.yaml").exists():
                dump_config(self.run_config if self.run_config is not None else cfg, self.out / "config.yaml")
        self.metrics = MetricsLogger(self.out, d.is_main, s.step if ckpt is not None else None, cfg.tensorboard)
        show_bar = progress_enabled(cfg.progress, d.is_main)
        self._info("training: %d samples/rank, %d ranks, %d batches/epoch, %d optimiser steps/epoch, device %s",
                   n, d.world_size, nb, steps_per_epoch, self.device)

        stop = cfg.max_steps is not None and s.step >= cfg.max_steps
        on_batch = getattr(self.task, "on_batch", None)
        after_step = getattr(self.task, "after_optimizer_step", None)
        try:
            while s.epoch < cfg.epochs and not stop:
                sampler.set_epoch(s.epoch)
                sampler.set_start(s.batches_done * cfg.batch_size)
                if hasattr(self.train_dataset, "set_epoch"):
                    self.train_dataset.set_epoch(s.epoch)
                loader = self._loader(self.train_dataset, sampler, cfg.batch_size, self.collate_fn,
                                      cfg.drop_last, seed=(cfg.seed * 100_003 + s.epoch) * 1_009 + d.rank)
                bar = ProgressBar(nb, s.batches_done, f"epoch {s.epoch + 1}/{cfg.epochs}", cfg.throughput_unit,
                                  show_bar)
                micro = 0
                for batch in self._device_batches(loader):
                    s.batches_done += 1
                    last_batch = s.batches_done >= nb
                    if on_batch is not None:
                        batch = on_batch(batch)
                    sync = micro + 1 == cfg.accum_steps or last_batch
                    no_sync = model.no_sync() if (d.world_size > 1 and not sync) else contextlib.nullcontext()
                    with no_sync:
                        with autocast(self.device, self.amp_dtype):
                            loss, logs, num = self.task.train_step(model, batch)
                        self.scaler.scale(loss / cfg.accum_steps).backward()
                    micro += 1
                    self.meter.add(loss, logs, num)
                    bar.update()
                    if not sync:
                        continue
                    grad_norm = self._optimizer_step(micro)
                    micro = 0
                    s.step += 1
                    self.meter.steps += 1
                    self.scheduler.step()
                    if after_step is not None:
                        after_step(self.raw_model, s.step)
                    if s.step % cfg.log_every == 0:
                        self._log_train(grad_norm, nb, total_steps, bar)
                    if cfg.max_steps is not None and s.step >= cfg.max_steps:
                        stop = True
                        break
                    if cfg.checkpoint_every and s.step % cfg.checkpoint_every == 0 and not last_batch:
                        self._save("last.pt")
                bar.close()
                epoch_done = s.batches_done >= nb
                if epoch_done:
                    s.epoch += 1
                    s.batches_done = 0
                self._end_of_epoch_or_stop(epoch_done, stop)
        finally:
            self.metrics.close()
        return self._summary()

    def _summary(self) -> dict[str, Any]:
        s, d = self.state, self.dist
        skipped = int(all_reduce_sum(torch.tensor([s.skipped], dtype=torch.float64))[0])
        wall = time.time() - self._session_t0
        summary = {
            "primary_metric": self.task.primary_metric,
            "higher_is_better": self.task.higher_is_better,
            "best_metric": s.best.get("value"),
            "best_step": s.best.get("step"),
            "best_epoch": s.best.get("epoch"),
            "final_metrics": s.last_eval,
            "steps": s.step,
            "epochs": s.epoch + s.batches_done / self._nb,
            "world_size": d.world_size,
            "skipped_inputs": skipped,
            "skipped_examples": s.skipped_examples,
            "wall_time_s": wall,
            "total_train_time_s": s.elapsed_s + wall,
        }
        if d.is_main:
            atomic_write_text(self.out / "summary.json", json.dumps(summary, indent=2) + "\n")
        return summary
