"""What one training session runs on, built once per ``Trainer.fit`` after the process group exists: the
device, the parallel mode, the model (bare, as trained, as evaluated), its weight EMA (``train.ema``), optimiser,
lr schedule, grad scaler, training sampler and run plan, autocast dtype, DataLoader workers and progress display.

:func:`build_run` makes every choice these depend on in one order (the RNGs are seeded first, a resumed
checkpoint is restored before the model is wrapped), so a resumed run is built exactly as the run it continues.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from timm.utils import ModelEmaV3
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from ..data.samplers import ResumableSampler
from .compile import CompiledOrEager
from .distributed import DistInfo
from .ema import build_ema
from .loading import SkipCounter, available_cores, move_to_device, rng_isolated
from .optim import build_optimizer
from .parallel import ReplicatedMode, parallel_mode
from .precision import amp_dtype, make_grad_scaler
from .progress import ProgressBar, progress_enabled
from .rng import seed_everything
from .run_plan import RunPlan, plan_run
from .schedule import LRSchedule
from .train_config import TrainConfig

__all__ = ["Run", "build_run", "SamplerFactory", "DeviceBatches"]

logger = logging.getLogger("spatiotemporal.engine")

SamplerFactory = Callable[[Dataset, bool, int, int, int], Sampler]


def default_sampler_factory(dataset: Dataset, shuffle: bool, seed: int, rank: int, world: int) -> Sampler:
    return ResumableSampler(len(dataset), shuffle=shuffle, seed=seed, rank=rank, world_size=world)


@dataclass
class Run:
    """The parts of one training session (see :func:`build_run`).

    ``raw_model`` is the bare model on the device (sharded in place under FSDP): checkpoints, checks and
    restores use it. Training steps call ``train_model`` (DDP and / or ``torch.compile`` around it), evaluations
    ``eval_model`` (the bare model, compiled with ``train.compile``). ``workers``: ``train.num_workers`` capped
    at the CPU cores this process may use; ``show_bar``: progress bars rather than log lines. ``ema``: timm's
    ``ModelEmaV3`` of ``raw_model`` (None unless ``train.ema.decay`` is set), evaluated as ``ema_eval_model`` (its
    module, compiled with ``train.compile``).
    """

    dist: DistInfo
    parallel: ReplicatedMode
    raw_model: nn.Module
    train_model: nn.Module
    eval_model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: LRSchedule
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None
    sampler: Sampler
    plan: RunPlan
    workers: int
    show_bar: bool
    ema: ModelEmaV3 | None = None
    ema_eval_model: nn.Module | None = None

    @property
    def device(self) -> torch.device:
        return self.dist.device

    def loader(self, dataset: Dataset, sampler: Sampler, batch_size: int, collate: Callable | None, *,
               drop_last: bool, seed: int) -> DataLoader:
        """A DataLoader with this run's workers; its worker seeds come from ``seed``, never the global RNG."""
        return DataLoader(
            dataset, batch_size=batch_size, sampler=sampler, num_workers=self.workers,
            collate_fn=collate, drop_last=drop_last, pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(seed),
        )

    def iterate(self, loader: DataLoader) -> Iterable[Any]:
        """``loader``'s batches; loading in this process (no workers) leaves the global RNG streams untouched."""
        return rng_isolated(loader) if self.workers == 0 else loader

    def device_batches(self, loader: DataLoader, skips: SkipCounter, bar: ProgressBar | None = None) -> DeviceBatches:
        return DeviceBatches(self, loader, skips, bar)


class DeviceBatches:
    """Iterable over a DataLoader's batches with ``"skipped"`` counted (into ``skips``) and removed and
    tensors moved to the run's device; advances ``bar`` per batch consumed. ``len()`` and ``dataset`` as the
    DataLoader's (what a task's ``evaluate`` sees)."""

    def __init__(self, run: Run, loader: DataLoader, skips: SkipCounter, bar: ProgressBar | None = None) -> None:
        self.run, self.loader, self.dataset, self.skips, self.bar = run, loader, loader.dataset, skips, bar

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Any]:
        device = self.run.device
        for batch in self.run.iterate(self.loader):
            yield move_to_device(self.skips.pop_from(batch), device, non_blocking=device.type == "cuda")
            if self.bar is not None:
                self.bar.update()


def _workers(cfg: TrainConfig, dist: DistInfo) -> int:
    """``train.num_workers``, capped at the available cores (one WARNING line on rank 0 when it is)."""
    cores = available_cores()
    if cfg.num_workers <= cores:
        return cfg.num_workers
    if dist.is_main:
        logger.warning("train.num_workers=%d capped at %d, the CPU cores this process may use",
                       cfg.num_workers, cores)
    return cores


def build_run(model: nn.Module, cfg: TrainConfig, dist: DistInfo, *, train_dataset: Dataset,
              sampler_factory: SamplerFactory | None = None,
              restore: Callable[[Run], None] | None = None) -> Run:
    """The :class:`Run` of ``model`` (moved to ``dist.device``, sharded in place under FSDP) trained on
    ``train_dataset`` with ``cfg``; every RNG is seeded with ``cfg.seed + rank`` first.

    ``restore`` (resuming) is called with the Run before the model is wrapped for training (DDP,
    ``torch.compile``): ``train_model`` and ``eval_model`` are still ``raw_model`` then. The EMA (``cfg.ema``)
    starts as a copy of the bare model on the device; ``restore`` loads its saved weights.
    """
    seed_everything(cfg.seed + dist.rank)
    parallel = parallel_mode(cfg.parallel, dist, cfg.find_unused_parameters)
    parallel.shard(model)  # FSDP places each rank's shards on its device, never the whole model
    raw = model.to(dist.device)
    raw.train()
    optimizer = build_optimizer(raw, cfg.optim)
    optimizer.zero_grad(set_to_none=True)
    sampler = (sampler_factory or default_sampler_factory)(train_dataset, True, cfg.seed, dist.rank,
                                                           dist.world_size)
    plan = plan_run(len(sampler), dist.world_size, cfg)
    dtype = amp_dtype(cfg.amp, dist.device)
    run = Run(
        dist=dist, parallel=parallel, raw_model=raw, train_model=raw, eval_model=raw, optimizer=optimizer,
        scheduler=LRSchedule(optimizer, cfg.sched, cfg.optim.lr, plan.steps_per_epoch, cfg.epochs),
        scaler=make_grad_scaler(dist.device, dtype), amp_dtype=dtype, sampler=sampler, plan=plan,
        workers=_workers(cfg, dist), show_bar=progress_enabled(cfg.progress, dist.is_main),
        ema=build_ema(raw, cfg.ema, parallel.name),
    )
    run.ema_eval_model = None if run.ema is None else run.ema.module
    if restore is not None:
        restore(run)
    run.train_model = parallel.wrap(raw)
    if cfg.compile:
        run.train_model = CompiledOrEager(run.train_model)
        run.eval_model = run.train_model if run.train_model.eager is raw else CompiledOrEager(raw)
        if run.ema is not None:
            run.ema_eval_model = CompiledOrEager(run.ema.module)
    return run
