"""What a training checkpoint holds and how a run comes back from it.

- :func:`checkpoint_payload`: the one place the content of ``last.pt`` and ``best.pt`` is built (the file
  format and its keys: :mod:`.checkpoint`);
- :func:`rank_state` / :func:`gather_state`: the parts each rank contributes (RNG, meter, skip counters) and the
  full model and optimiser state (collective); :func:`ema_state`: the weight EMA's (``train.ema``; rank 0's copy);
- :func:`snapshot`: the copy of a mid-epoch state that is written one optimiser step later, once that step's loss
  shows its weights are good;
- :func:`read_resume_checkpoint` and :func:`restore`: ``last.pt`` of a resumed run, loaded into a
  :class:`~.run.Run` and the run's counters so that it continues bit-identically.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..utils.config import ConfigError, config_to_dict
from .checkpoint import CheckpointError, checkpoint_dir, load_checkpoint, shareable_payload
from .distributed import barrier
from .loading import SkipCounter
from .rng import get_rng_state, seed_everything, set_rng_state
from .run import Run
from .run_state import Meter, RunState
from .task import Task
from .train_config import TrainConfig

__all__ = ["rank_state", "gather_state", "ema_state", "checkpoint_payload", "snapshot", "read_resume_checkpoint",
           "restore"]

logger = logging.getLogger("spatiotemporal.engine")


def rank_state(meter: Meter, train_skips: SkipCounter, val_skips: SkipCounter) -> dict[str, Any]:
    """This rank's part of ``last.pt``'s ``rank_states``: its RNG streams, logging window and skip counters."""
    return {"rng": get_rng_state(), "meter": meter.state_dict(),
            "skips": {"train": train_skips.state_dict(), "val": val_skips.state_dict()}}


def gather_state(run: Run, *, full: bool) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """Collective: the model's (and with ``full`` the optimiser's) full state dict, valid on rank 0."""
    model = run.parallel.model_state_dict(run.raw_model)
    return model, run.parallel.optimizer_state_dict(run.raw_model, run.optimizer) if full else None


def ema_state(run: Run) -> dict[str, torch.Tensor] | None:
    """The EMA's weights, keyed as the model's (None without ``train.ema``); every rank holds the same copy."""
    return None if run.ema is None else run.ema.module.state_dict()


def checkpoint_payload(state: RunState, model: dict[str, torch.Tensor], optimizer: dict[str, Any] | None, *,
                       rank_states: list[dict[str, Any]], elapsed_s: float, cfg: TrainConfig, run: Run,
                       task: Task, buffers: dict[str, torch.Tensor] | None = None,
                       ema: dict[str, torch.Tensor] | None = None, weights: str = "model") -> dict[str, Any]:
    """With ``optimizer``: ``last.pt`` (all resume needs); otherwise ``best.pt`` (no optimiser / RNG state).

    ``state`` is the run's position and totals at the checkpoint, ``model`` the full state dict (``buffers``, when
    given, replace its buffers: those of a :func:`snapshot`), ``elapsed_s`` the training wall time so far.
    ``ema``: the weight EMA's state dict, kept in ``last.pt`` as ``"ema"`` (only when given). ``best.pt`` says in
    ``"weights"`` whose weights its ``"model"`` holds: ``"model"``, or ``"ema"`` (``train.ema.eval``).
    """
    full = optimizer is not None
    model = {**model, **(buffers or {})}
    payload = {
        "kind": "last" if full else "best",
        "model": model,
        "step": state.step,
        "epoch": state.epoch,
        "batches_done": state.batches_done,
        "samples_done": state.batches_done * cfg.batch_size,
        "world_size": run.dist.world_size,
        "parallel": run.parallel.name,
        "batch_size": cfg.batch_size,
        "accum_steps": cfg.accum_steps,
        "sampler": {"epoch": state.epoch, "start": state.batches_done * cfg.batch_size},
        "best": dict(state.best),
        "last_eval": dict(state.last_eval),
        "totals": state.totals(),
        "elapsed_s": elapsed_s,
        "config": config_to_dict(cfg),
    }
    if hasattr(task, "state_dict"):
        payload["task"] = task.state_dict()
    if full:
        payload.update(optimizer=optimizer, scheduler=run.scheduler.state_dict(),
                       scaler=run.scaler.state_dict(), rank_states=rank_states)
        if ema is not None:
            payload.update(ema=ema, last_eval_ema=dict(state.last_eval_ema))
        return payload
    payload["weights"] = weights
    return shareable_payload(payload)


def snapshot(run: Run, state: RunState, rank_states: list[dict[str, Any]], *, elapsed_s: float) -> dict[str, Any]:
    """The state after this optimiser step, for ``last.pt`` at the next one: ``{"step"}``, and on rank 0 (the
    writer) ``"payload"``, the keyword arguments of :func:`checkpoint_payload` it needs besides the model and
    optimiser state. Until that update, parameters, optimiser, scheduler, scaler and task state stay as they are;
    the buffers (e.g. BatchNorm statistics), RNG streams (in ``rank_states``) and counters move on, so they are
    copied."""
    snap: dict[str, Any] = {"step": state.step}
    if run.dist.is_main:
        params = {n for n, _ in run.raw_model.named_parameters()}
        buffers = {k: v.detach().clone() for k, v in run.raw_model.state_dict().items() if k not in params}
        snap["payload"] = {"state": copy.deepcopy(state), "rank_states": rank_states, "elapsed_s": elapsed_s,
                           "buffers": buffers}
    return snap


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


def read_resume_checkpoint(out: Path, *, resume: bool, is_main: bool) -> dict[str, Any] | None:
    """Collective: ``out``'s ``last.pt`` when resuming (None for a new run; a WARNING line when resuming finds
    none); refuses to overwrite an existing run."""
    last = checkpoint_dir(out) / "last.pt"
    ckpt = None
    if resume and last.is_file():
        try:
            ckpt = load_checkpoint(last)
        except CheckpointError as e:
            raise CheckpointError(f"cannot resume: {e}; {_best_hint(last)}") from e
    elif resume:
        if is_main:
            logger.warning("resume requested but %s does not exist: starting a new run", last)
    elif last.is_file():
        raise FileExistsError(
            f"{last} exists: continue that run with --resume (train.resume=true in a config), "
            f"or choose another --out directory (train.out)"
        )
    barrier()
    return ckpt


def _check_fits(model: nn.Module, saved: dict[str, torch.Tensor], *, source: Path, out: Path) -> None:
    """A resumed model must be the one the run started with: one line naming what differs otherwise."""
    own = model.state_dict()
    diff = [f"{k} missing" for k in own if k not in saved] + [f"{k} unexpected" for k in saved if k not in own]
    diff += [f"{k} {tuple(saved[k].shape)} vs {tuple(own[k].shape)}" for k in saved
             if k in own and saved[k].shape != own[k].shape]
    if diff:
        raise CheckpointError(
            f"cannot resume: {source} holds another model than this run's ({len(diff)} tensors differ: "
            f"{', '.join(diff[:3])}{', ...' if len(diff) > 3 else ''}): the model or data settings changed since "
            f"the run started; resume with those of {out / 'config.yaml'}, or start a new run (another "
            f"--out) from its weights with --init {source}")


def _load_rank_states(ckpt: dict[str, Any], run: Run, *, cfg: TrainConfig, state: RunState, meter: Meter,
                      skips: tuple[SkipCounter, SkipCounter], source: Path) -> None:
    """This rank's RNG streams, logging window and skip counters; re-seeded (one WARNING line) when the
    checkpoint holds none for this layout."""
    d = run.dist
    rank_states = ckpt.get("rank_states", [])
    if len(rank_states) == d.world_size:
        mine = rank_states[d.rank]
        set_rng_state(mine["rng"])
        meter.load_state_dict(mine["meter"])
        if "skips" in mine:  # checkpoints of engine versions before the skip counters count from here
            for counter, key in zip(skips, ("train", "val")):
                counter.load_state_dict(mine["skips"][key])
        return
    if d.is_main:
        if "optimizer" not in ckpt:
            logger.warning("%s holds weights only (a copy of best.pt?): optimiser and lr-schedule state restart "
                           "at step %d; the resume is not bit-exact", source, state.step)
        else:
            logger.warning("checkpoint has %d ranks, this run %d: RNG streams are re-seeded (resume not exact)",
                           len(rank_states), d.world_size)
    seed_everything(cfg.seed + d.rank + state.step)
    if d.rank == 0:  # every rank's run totals are kept on rank 0
        for r in (r for r in rank_states if "skips" in r):
            for counter, key in zip(skips, ("train", "val")):
                other = SkipCounter()
                other.load_state_dict(r["skips"][key])
                counter.merge(other)


def _restore_ema(ckpt: dict[str, Any], run: Run, *, source: Path, out: Path) -> None:
    """The EMA's saved weights; without them (a checkpoint written with the EMA off) one WARNING line and the EMA
    starts from the resumed model. Saved EMA weights of a run resumed with the EMA off are dropped (one line)."""
    saved = ckpt.get("ema")
    if run.ema is None:
        if saved is not None and run.dist.is_main:
            logger.warning("%s holds weight-EMA state but train.ema.decay is unset: the EMA is dropped", source)
        return
    if saved is None:
        if run.dist.is_main:
            logger.warning("%s holds no weight-EMA state (written with train.ema.decay unset): the EMA starts from "
                           "the model's weights at step %d", source, ckpt["step"])
        run.ema.set(run.raw_model)
        return
    _check_fits(run.ema.module, saved, source=source, out=out)
    run.ema.module.load_state_dict(saved)


def restore(ckpt: dict[str, Any], run: Run, *, cfg: TrainConfig, task: Task, state: RunState, meter: Meter,
            skips: tuple[SkipCounter, SkipCounter], source: Path) -> None:
    """Load ``ckpt`` (read from ``source``) into ``run`` (before its model is wrapped), ``task``, ``state``,
    ``meter`` and the ``(train, val)`` skip counters. A ``best.pt`` copied over ``last.pt`` restores the weights
    and position only. One line naming the file and what differs when the model, the mid-epoch layout or the
    parallel mode is not the checkpoint's."""
    d, s = run.dist, state
    same_layout = (ckpt["world_size"], ckpt["batch_size"], ckpt["accum_steps"]) == (
        d.world_size, cfg.batch_size, cfg.accum_steps)
    if ckpt["batches_done"] and not same_layout:
        raise ConfigError(
            f"cannot resume mid-epoch with a different layout: checkpoint world_size/batch_size/accum "
            f"{ckpt['world_size']}/{ckpt['batch_size']}/{ckpt['accum_steps']}, this run "
            f"{d.world_size}/{cfg.batch_size}/{cfg.accum_steps}"
        )
    _check_fits(run.raw_model, ckpt["model"], source=source, out=Path(cfg.out))
    weights_only = "optimizer" not in ckpt
    written_by = ckpt.get("parallel", "ddp")
    if not weights_only and written_by != run.parallel.name:
        raise ConfigError(f"cannot resume: {source} was written with train.parallel={written_by} "
                          f"(its optimiser state is laid out for it); resume with train.parallel={written_by}")
    run.parallel.load_model_state_dict(run.raw_model, ckpt["model"])
    if weights_only:  # a best.pt copied over last.pt
        run.scheduler.load_state_dict({"last_step": ckpt["step"]})
    else:
        run.parallel.load_optimizer_state_dict(run.raw_model, run.optimizer, ckpt["optimizer"])
        run.scheduler.load_state_dict(ckpt["scheduler"])
        run.scaler.load_state_dict(ckpt["scaler"])
    if hasattr(task, "load_state_dict") and "task" in ckpt:
        task.load_state_dict(ckpt["task"])
    _restore_ema(ckpt, run, source=source, out=Path(cfg.out))
    s.last_eval_ema = dict(ckpt.get("last_eval_ema", {}))
    s.step, s.epoch, s.batches_done = ckpt["step"], ckpt["epoch"], ckpt["batches_done"]
    s.best, s.last_eval, s.elapsed_s = dict(ckpt["best"]), dict(ckpt["last_eval"]), ckpt["elapsed_s"]
    s.load_totals(ckpt.get("totals", {}))
    judged, was = ("ema" if run.ema is not None and cfg.ema.eval else "model"), s.best.get("weights", "model")
    if s.best and was != judged and d.is_main:
        whose = {"ema": "EMA", "model": "model"}
        logger.warning("the best so far (%s %.4g at step %d) was judged on the %s's weights, this run judges the "
                       "%s's (train.ema.eval): best.pt is replaced only when they do better than it",
                       task.primary_metric, s.best["value"], s.best["step"], whose[was], whose[judged])
    _load_rank_states(ckpt, run, cfg=cfg, state=s, meter=meter, skips=skips, source=source)
    if d.is_main:
        logger.info("resumed from step %d (epoch %d, batch %d of the epoch)", s.step, s.epoch, s.batches_done)
