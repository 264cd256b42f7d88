"""Generic, task-agnostic training loop: DDP or FSDP2 (``train.parallel``), accumulation, AMP, optional
``torch.compile`` (``train.compile``), weight EMA (``train.ema``, timm's ``ModelEmaV3``), exact mid-epoch resume.

The :class:`Trainer` holds the loop: epochs, accumulation windows, optimiser steps, evaluations, the checks
below, logging and when to checkpoint. What a session runs on (device, model as trained and as evaluated,
optimiser, schedule, scaler, sampler, plan, workers) is a :class:`~.run.Run` that ``fit`` builds once with
:func:`~.run.build_run`; what a checkpoint holds and how a resume restores it is :mod:`.checkpoint_payload`.

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

import functools
import json
import logging
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import Dataset

from ..data.samplers import ResumableSampler
from ..utils.atomic import atomic_write_text, remove_orphaned_temp_files
from ..utils.config import ConfigError, dump_config
from .checkpoint import checkpoint_dir, non_finite, save_checkpoint
from .checkpoint_payload import (
    checkpoint_payload,
    ema_state,
    gather_state,
    rank_state,
    read_resume_checkpoint,
    restore,
    snapshot,
)
from .distributed import DistInfo, all_gather_object, all_reduce_sum, init_distributed
from .errors import NoUsableSamples, TrainingDiverged
from .loading import SkipCounter, describe_paths, move_to_device
from .metrics_log import MetricsLogger
from .precision import autocast
from .progress import ProgressBar
from .rng import get_rng_state, set_rng_state
from .run import Run, SamplerFactory, build_run
from .run_state import AccumWindow, Meter, RunState
from .task import Task
from .train_config import TrainConfig

__all__ = ["Trainer", "SamplerFactory", "move_to_device"]

logger = logging.getLogger("spatiotemporal.engine")


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

    ``dist`` (:class:`~.distributed.DistInfo`) and ``run`` (:class:`~.run.Run`) are None until ``fit`` sets them.
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
        self.sampler_factory = sampler_factory
        self.run_config = run_config
        self.out = Path(cfg.out)
        self._on_batch = getattr(task, "on_batch", None)
        self._after_step = getattr(task, "after_optimizer_step", None)
        # set once in fit(): the process group must exist first
        self.dist: DistInfo | None = None
        self.run: Run | None = None
        self.metrics: MetricsLogger | None = None  # opened with the run directory
        self.state = RunState()
        self.meter = Meter()
        self.window = AccumWindow()
        self.train_skips, self.val_skips = SkipCounter(), SkipCounter()
        self._pending: dict[str, Any] | None = None  # a mid-epoch checkpoint awaiting the next loss check
        self._last_good: tuple[Path, int] | None = None  # (last.pt, its step) once one exists
        self._warned_empty_epoch = -1
        self._stop = False  # max_steps reached
        # time.time() at the start of this session; perf_counter() at the last training-time tick and progress line
        self._session_t0 = self._clock = self._line_t = 0.0

    # ------------------------------------------------------------------ helpers
    def _info(self, msg: str, *args: Any) -> None:
        if self.dist is not None and self.dist.is_main:
            logger.info(msg, *args)

    def _warn(self, msg: str, *args: Any) -> None:
        if self.dist is not None and self.dist.is_main:
            logger.warning(msg, *args)

    def _sum(self, *values: float) -> list[float]:
        """``values`` summed over all ranks (collective)."""
        return all_reduce_sum(torch.tensor(values, dtype=torch.float64, device=self.run.device)).tolist()

    def _epoch_position(self) -> float:
        return self.state.epoch + self.state.batches_done / self.run.plan.batches_per_epoch

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
        batches = self.run.plan.batches_per_epoch if epoch_done else s.batches_done
        why = (f"{skipped} inputs were skipped as unreadable (e.g. {skips.describe_current()})" if skipped
               else "the task's train_step counted 0 samples in every batch")
        return NoUsableSamples(
            f"epoch {epoch} had no usable training sample in {batches} batches per rank: {why}; no optimiser "
            f"update was taken and no checkpoint written for it: repair or remove the unreadable inputs"
        )

    def _check_finite(self, step: int) -> None:
        """Collective: raise :class:`TrainingDiverged` if a weight, buffer or optimiser state is non-finite."""
        r = self.run
        names = {p: n for n, p in r.raw_model.named_parameters()}
        bad = non_finite(r.raw_model.state_dict().items())  # a sharded tensor: this rank's shard
        bad += non_finite((f"EMA {k}", v) for k, v in (ema_state(r) or {}).items())
        bad += non_finite((f"optimizer {k} of {names.get(p, '?')}", v)
                          for p, st in r.optimizer.state.items() for k, v in st.items())
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

    def _prepare(self) -> None:
        """The run (device, resume checkpoint restored, model, optimiser, ...), the run directory, the start-of-run
        log lines."""
        cfg, d = self.cfg, self.dist
        self._setup_logging()
        if self.val_dataset is not None and len(self.val_dataset) == 0:
            raise NoUsableSamples("the validation dataset is empty (0 samples): evaluation would report "
                                  "metrics over nothing; give a split with samples, or train without one")
        self._session_t0 = time.time()
        ckpt = read_resume_checkpoint(self.out, resume=cfg.resume, is_main=d.is_main)
        resume = None
        if ckpt is not None:
            self._last_good = (checkpoint_dir(self.out) / "last.pt", ckpt["step"])
            resume = functools.partial(restore, ckpt, cfg=cfg, task=self.task, state=self.state, meter=self.meter,
                                       skips=(self.train_skips, self.val_skips), source=self._last_good[0])
        self.run = build_run(self.model, cfg, d, train_dataset=self.train_dataset,
                             sampler_factory=self.sampler_factory, restore=resume)
        self._open_run_dir(resumed=ckpt is not None)
        self._line_t = time.perf_counter()
        self._info("training on %s: %s", d.device, self.run.plan.describe(cfg))
        for line in self.run.plan.warnings(cfg, self.run.scheduler.warmup):
            self._warn(line)
        self._stop = cfg.max_steps is not None and self.state.step >= cfg.max_steps

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
    def _elapsed(self) -> float:
        return self.state.elapsed_s + (time.time() - self._session_t0)

    def _save(self, *names: str) -> None:
        """Collective: every rank contributes its RNG / meter / skip state; rank 0 writes ``names`` in order
        (best first: a kill in between never leaves last ahead of best). Weights must be checked first."""
        rank_states = all_gather_object(rank_state(self.meter, self.train_skips, self.val_skips))
        model, optimizer = gather_state(self.run, full="last.pt" in names)
        ema = ema_state(self.run)
        best_ema = ema is not None and self.cfg.ema.eval  # best.pt holds the weights its metric was judged on
        ckdir = checkpoint_dir(self.out)
        if self.dist.is_main:
            for name in names:
                last = name == "last.pt"
                payload = checkpoint_payload(self.state, ema if best_ema and not last else model,
                                             optimizer if last else None, rank_states=rank_states,
                                             elapsed_s=self._elapsed(), cfg=self.cfg, run=self.run, task=self.task,
                                             ema=ema if last else None, weights="ema" if best_ema else "model")
                save_checkpoint(payload, ckdir / name)
        if "last.pt" in names:
            self._last_good = (ckdir / "last.pt", self.state.step)

    def _snapshot(self) -> dict[str, Any]:
        """Collective: the state after this optimiser step, written at the next one once its loss shows the
        weights are good (:func:`~.checkpoint_payload.snapshot`)."""
        self._check_finite(self.state.step)
        rank_states = all_gather_object(rank_state(self.meter, self.train_skips, self.val_skips))
        return snapshot(self.run, self.state, rank_states, elapsed_s=self._elapsed())

    def _write_pending(self) -> None:
        pending, self._pending = self._pending, None
        last = checkpoint_dir(self.out) / "last.pt"
        t0 = time.perf_counter()
        model, optimizer = gather_state(self.run, full=True)
        if "payload" in pending:
            save_checkpoint(checkpoint_payload(model=model, optimizer=optimizer, cfg=self.cfg, run=self.run,
                                               task=self.task, ema=ema_state(self.run), **pending["payload"]), last)
            self._clock += time.perf_counter() - t0  # checkpoint writes are not training time
        self._last_good = (last, pending["step"])

    # ------------------------------------------------------------------ evaluation
    def _evaluate(self, ema: bool = False) -> tuple[dict[str, float], int]:
        """The task's metrics on the validation set and the number of inputs skipped (all ranks): the model's, or
        with ``ema`` the weight EMA's (its skips, the same inputs, are not counted again)."""
        cfg, d, s, r = self.cfg, self.dist, self.state, self.run
        what = "eval of the EMA" if ema else "eval"
        skips = SkipCounter() if ema else self.val_skips
        sampler = ResumableSampler(len(self.val_dataset), shuffle=False, seed=cfg.seed, rank=d.rank,
                                   world_size=d.world_size, pad=False)
        if hasattr(self.val_dataset, "set_epoch"):
            self.val_dataset.set_epoch(0)
        loader = r.loader(self.val_dataset, sampler, cfg.eval_batch_size or cfg.batch_size, self.val_collate_fn,
                          drop_last=False, seed=cfg.seed)
        bar = ProgressBar(len(loader), 0, f"{what} at step {s.step}", cfg.throughput_unit, r.show_bar)
        if not bar.enabled:
            self._info("%s at step %d: %d validation samples, %d batches on this rank",
                       "evaluating the EMA" if ema else "evaluating", s.step, len(self.val_dataset), len(loader))
        t0 = time.perf_counter()
        skips.start_period()
        rng = get_rng_state()  # evaluation must not shift the training RNG streams
        module = r.ema.module if ema else r.raw_model  # the EMA's module is always in eval mode
        module.eval()
        try:
            with r.parallel.evaluation(module), autocast(r.device, r.amp_dtype):
                metrics = self.task.evaluate(r.ema_eval_model if ema else r.eval_model,
                                             r.device_batches(loader, skips, bar))
        finally:
            if not ema:
                r.raw_model.train()
            set_rng_state(rng)
            bar.close()
        metrics = {k: float(v) for k, v in metrics.items()}
        if self.task.primary_metric not in metrics:
            raise KeyError(
                f"task.evaluate returned {sorted(metrics)}, without the primary metric "
                f"'{self.task.primary_metric}'"
            )
        skipped = 0
        if not ema:
            skipped = int(self._sum(self.val_skips.current)[0])
            s.val_skipped += skipped
        self._info("%s at step %d (%.1fs): %s", what, s.step, time.perf_counter() - t0,
                   ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        return metrics, skipped

    # ------------------------------------------------------------------ training
    def _forward_backward(self, batch: Any, sync: bool) -> None:
        """One micro-batch: forward under autocast, backward of ``loss / accum_steps`` (DDP all-reduces
        the gradients only when ``sync``, at the last micro-batch of the accumulation window)."""
        if self._on_batch is not None:
            batch = self._on_batch(batch)
        r = self.run
        with r.parallel.sync_gradients(sync):
            with autocast(r.device, r.amp_dtype):
                loss, logs, num = self.task.train_step(r.train_model, batch)
            r.scaler.scale(loss / self.cfg.accum_steps).backward()
        self.window.add(loss, num)
        if num:
            self.meter.add_logs(logs)

    def _update(self, micro: int) -> float | None:
        """Step on the accumulated gradients of ``micro`` micro-batches; returns the grad norm if clipped."""
        r = self.run
        params = [p for g in r.optimizer.param_groups for p in g["params"]]
        if micro < self.cfg.accum_steps:  # short group at the end of an epoch: grads are a mean over micro
            for p in params:
                if p.grad is not None:
                    p.grad.mul_(self.cfg.accum_steps / micro)
        norm = None
        if self.cfg.clip_grad is not None:
            r.scaler.unscale_(r.optimizer)
            norm = r.parallel.clip_grad_norm(params, self.cfg.clip_grad)
            if not math.isfinite(norm) and r.amp_dtype != torch.float16:  # fp16: the scaler skips the step
                raise self._diverged(self.state.step + 1, f"the gradient norm is {norm}")
        r.scaler.step(r.optimizer)
        r.scaler.update()
        r.optimizer.zero_grad(set_to_none=True)
        return norm

    def _skip_update(self) -> None:
        """An accumulation window without a sample on any rank: no update (weight decay and momentum would
        still move the weights)."""
        self.run.optimizer.zero_grad(set_to_none=True)
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
        if not math.isfinite(loss) and self.run.amp_dtype != torch.float16:  # fp16: the grad scaler handles it
            raise self._diverged(s.step + 1, f"the training loss is {loss}")
        if self._pending is not None:
            self._write_pending()
        grad_norm = None
        if samples:
            grad_norm = self._update(micro)
        else:
            self._skip_update()
        s.step += 1
        self.run.scheduler.step()
        if samples and self._after_step is not None:
            self._after_step(self.run.raw_model, s.step)
        if samples and self.run.ema is not None:  # timm's train.py: after the step, with the update count
            self.run.ema.update(self.run.raw_model, step=s.step)
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
                self.run.scheduler.lr_at(self.state.step - 1), elapsed)

    def _progress_line(self, loss: float | None, rate: float, lr: float, elapsed: float) -> None:
        s, total = self.state, self.run.plan.total_steps
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
        cfg, d, s, r = self.cfg, self.dist, self.state, self.run
        nb = r.plan.batches_per_epoch
        r.sampler.set_epoch(s.epoch)
        r.sampler.set_start(s.batches_done * cfg.batch_size)
        if hasattr(self.train_dataset, "set_epoch"):
            self.train_dataset.set_epoch(s.epoch)
        loader = r.loader(self.train_dataset, r.sampler, cfg.batch_size, self.collate_fn, drop_last=cfg.drop_last,
                          seed=(cfg.seed * 100_003 + s.epoch) * 1_009 + d.rank)
        bar = ProgressBar(nb, s.batches_done, f"epoch {s.epoch + 1}/{cfg.epochs}", cfg.throughput_unit,
                          r.show_bar, leave=True)
        self.window.reset()
        self._clock = time.perf_counter()
        for batch in r.device_batches(loader, self.train_skips):
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
            ema = self._evaluate(ema=True)[0] if self.run.ema is not None else {}
            event.update({f"val_ema/{k}": v for k, v in ema.items()})
            for whose, judged in (("", metrics), ("EMA ", ema)):
                for k in (self.task.primary_metric, "loss") if judged else ():
                    if not math.isfinite(judged.get(k, 0.0)):
                        raise self._diverged(s.step, f"the {whose}evaluation's {k} is {judged[k]}")
            s.last_eval, s.last_eval_ema = metrics, ema
            weights = "ema" if ema and self.cfg.ema.eval else "model"  # what best.pt is judged on and holds
            value = (ema if weights == "ema" else metrics)[self.task.primary_metric]
            better = (not s.best or (value > s.best["value"] if self.task.higher_is_better
                                     else value < s.best["value"]))
            if better:
                s.best = {"value": value, "step": s.step, "epoch": s.epoch, "weights": weights}
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
            "best_weights": s.best.get("weights", "model") if s.best else None,  # "ema" with train.ema.eval
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
        if self.run.ema is not None:
            summary["final_metrics_ema"] = s.last_eval_ema
        facts = getattr(self.task, "run_facts", None)
        if callable(facts):
            summary.update(facts())
        if d.is_main:
            atomic_write_text(self.out / "summary.json", json.dumps(summary, indent=2) + "\n")
        return summary
