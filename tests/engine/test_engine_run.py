"""The Trainer's parts: the Run that ``fit`` builds once (``engine/run.py``) and the checkpoint payload
(``engine/checkpoint_payload.py``)."""

from __future__ import annotations

import torch
from engine_toy import ToyDataset, ToyModel, ToyTask, build, one_thread, toy_config

from spatiotemporal.engine import DistInfo, EmaConfig
from spatiotemporal.engine.checkpoint_payload import checkpoint_payload, gather_state
from spatiotemporal.engine.compile import CompiledOrEager
from spatiotemporal.engine.run import Run, build_run
from spatiotemporal.engine.run_state import RunState

CPU = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"), initialized_here=False)

# what resume reads: the keys of last.pt never change, so a checkpoint of any earlier version resumes
LAST_KEYS = {"kind", "model", "task", "config", "step", "epoch", "batches_done", "samples_done", "world_size",
             "parallel", "batch_size", "accum_steps", "sampler", "best", "last_eval", "totals", "elapsed_s",
             "optimizer", "scheduler", "scaler", "rank_states"}


def test_fit_builds_the_run_once_and_no_attribute_is_born_outside_init(tmp_path):
    trainer, model = build(toy_config(tmp_path / "r", epochs=1, max_steps=3))
    before = set(vars(trainer))
    assert trainer.run is None and trainer.dist is None
    with one_thread():
        summary = trainer.fit()
    assert set(vars(trainer)) == before
    run = trainer.run
    assert isinstance(run, Run) and run.raw_model is model and run.train_model is model  # one process: no DDP
    assert run.plan.steps_per_epoch == 6 and summary["steps"] == 3 == run.scheduler.last_step


def test_build_run_restores_before_the_model_is_wrapped(tmp_path):
    """A resumed checkpoint is loaded into the bare model; ``train.compile`` wraps it afterwards."""
    cfg = toy_config(tmp_path / "r", compile=True, ema=EmaConfig(decay=0.9))
    model = ToyModel()
    seen = []

    def restore(run: Run) -> None:
        seen.append((run.train_model is run.raw_model, run.eval_model is run.raw_model, run.ema_eval_model))
        run.scheduler.load_state_dict({"last_step": 5})

    run = build_run(model, cfg, CPU, train_dataset=ToyDataset(48, cfg.seed, train=True), restore=restore)
    assert seen == [(True, True, run.ema.module)]  # the EMA exists (a copy of the model) when restore loads it
    assert isinstance(run.train_model, CompiledOrEager) and run.train_model.eager is model
    assert run.eval_model is run.train_model  # no DDP wrapper: one compiled module serves both
    assert isinstance(run.ema_eval_model, CompiledOrEager) and run.ema_eval_model.eager is run.ema.module
    assert run.ema.module is not model and run.ema.decay == 0.9
    assert run.scheduler.last_step == 5 and run.device == torch.device("cpu")
    assert run.plan.batches_per_epoch == 6 and len(run.sampler) == 48


def test_last_checkpoint_payload_keeps_its_keys_and_best_has_no_resume_state(tmp_path):
    cfg = toy_config(tmp_path / "r", batch_size=4)
    run = build_run(ToyModel(), cfg, CPU, train_dataset=ToyDataset(48, cfg.seed, train=True))
    state = RunState(step=7, epoch=1, batches_done=2)
    model, optimizer = gather_state(run, full=True)
    last = checkpoint_payload(state, model, optimizer, rank_states=[{"rng": 1}], elapsed_s=2.5, cfg=cfg, run=run,
                              task=ToyTask())
    assert set(last) == LAST_KEYS - {"task"}  # the toy task has no state_dict
    assert last["kind"] == "last" and last["sampler"] == {"epoch": 1, "start": 8} and last["samples_done"] == 8
    assert (last["world_size"], last["parallel"], last["rank_states"]) == (1, "ddp", [{"rng": 1}])
    best = checkpoint_payload(state, model, None, rank_states=[], elapsed_s=2.5, cfg=cfg, run=run, task=ToyTask())
    assert best["kind"] == "best" and not {"optimizer", "scheduler", "scaler", "rank_states"} & set(best)
    buffers = {"fc1.bias": torch.zeros(32)}  # a snapshot's buffers replace the current ones
    assert torch.equal(checkpoint_payload(state, model, None, rank_states=[], elapsed_s=0.0, cfg=cfg, run=run,
                                          task=ToyTask(), buffers=buffers)["model"]["fc1.bias"], torch.zeros(32))
