"""Weight EMA (``train.ema``): timm's ``ModelEmaV3`` updated after each optimiser step, evaluated beside the
model, ``best.pt`` holding the EMA's weights with ``ema.eval``; the config's one-line errors."""

from __future__ import annotations

import logging

import pytest
import torch
from engine_toy import ToyDataset, ToyModel, ToyRecipe, ToyTask, one_thread, run, skipping_collate, toy_config
from timm.utils import ModelEmaV3

from spatiotemporal.engine import ConfigError, EmaConfig, Trainer, load_checkpoint, load_config, read_metrics


class RecordingTask(ToyTask):
    """The toy task, keeping a copy of the weights after each optimiser step (the EMA's inputs)."""

    def __init__(self) -> None:
        super().__init__()
        self.trajectory: list[tuple[int, dict[str, torch.Tensor]]] = []

    def after_optimizer_step(self, model, step):
        self.trajectory.append((step, {k: v.detach().clone() for k, v in model.state_dict().items()}))


def test_ema_equals_timm_model_ema_v3_driven_by_hand_over_the_same_trajectory(tmp_path):
    cfg = toy_config(tmp_path / "r", epochs=1, ema=EmaConfig(decay=0.8, warmup=True))
    torch.manual_seed(cfg.seed)
    model, task = ToyModel(), RecordingTask()
    trainer = Trainer(model, task, ToyDataset(48, cfg.seed, train=True), ToyDataset(20, cfg.seed + 1, train=False),
                      cfg, collate_fn=skipping_collate)
    with one_thread():
        summary = trainer.fit()
    assert [s for s, _ in task.trajectory] == list(range(1, 7))

    by_hand = ModelEmaV3(ToyModel(), decay=0.8, use_warmup=True)  # step 1 copies: the start does not matter
    weights = ToyModel()
    for step, state in task.trajectory:
        weights.load_state_dict(state)
        by_hand.update(weights, step=step)
    saved = load_checkpoint(tmp_path / "r" / "checkpoints" / "last.pt")["ema"]
    for k, v in by_hand.module.state_dict().items():
        assert torch.equal(trainer.run.ema.module.state_dict()[k], v), k
        assert torch.equal(saved[k], v), k
    assert not torch.equal(saved["head.weight"], model.state_dict()["head.weight"])  # an average, not the model

    event = read_metrics(tmp_path / "r" / "metrics.jsonl")[-1]
    assert {"val/acc", "val_ema/acc", "val_ema/loss"} <= set(event) and "val_ema/skipped" not in event
    assert summary["final_metrics_ema"]["acc"] == event["val_ema/acc"]
    assert summary["best_weights"] == "model" and summary["best_metric"] == event["val/acc"]


def test_best_pt_holds_the_ema_weights_with_ema_eval(tmp_path):
    out = tmp_path / "r"
    with one_thread():
        summary, model = run(toy_config(out, epochs=1, ema=EmaConfig(decay=0.8, eval=True)))
    best, last = (load_checkpoint(out / "checkpoints" / n) for n in ("best.pt", "last.pt"))
    assert best["weights"] == "ema" and summary["best_weights"] == "ema" and best["best"]["weights"] == "ema"
    assert best["step"] == last["step"] == 6  # one evaluation: best and last are of the same step
    for k, v in last["ema"].items():
        assert torch.equal(best["model"][k], v), k
    assert not torch.equal(best["model"]["head.weight"], last["model"]["head.weight"])
    event = read_metrics(out / "metrics.jsonl")[-1]
    assert summary["best_metric"] == event["val_ema/acc"] == best["best"]["value"]


def test_resuming_with_ema_on_from_a_checkpoint_without_it_warns_and_starts_from_the_model(tmp_path, caplog):
    out = tmp_path / "r"
    with one_thread():
        run(toy_config(out, epochs=1))
        assert "ema" not in load_checkpoint(out / "checkpoints" / "last.pt")
        with caplog.at_level(logging.WARNING, logger="spatiotemporal.engine"):
            summary, _ = run(toy_config(out, epochs=2, resume=True, ema=EmaConfig(decay=0.8, eval=True)))
    lines = [r.getMessage() for r in caplog.records]
    started = [m for m in lines if "weight-EMA" in m]
    assert len(started) == 1 and "starts from the model's weights at step 6" in started[0]
    judged = [m for m in lines if "judged on" in m]  # the best of epoch 1 was the model's
    assert len(judged) == 1 and "judged on the model's weights, this run judges the EMA's" in judged[0]
    assert "ema" in load_checkpoint(out / "checkpoints" / "last.pt") and "acc" in summary["final_metrics_ema"]


@pytest.mark.parametrize("override, needle", [
    ("train.ema.decay=1.0", "train.ema.decay must be in (0, 1)"),
    ("train.ema.decay=0", "train.ema.decay must be in (0, 1)"),
    ("train.ema.decay=.nan", "train.ema.decay must be in (0, 1)"),
    ("train.ema.eval=true", "train.ema.eval=true needs an EMA: set train.ema.decay"),
])
def test_ema_config_errors_are_one_line(override, needle):
    with pytest.raises(ConfigError) as e:
        load_config(ToyRecipe, None, [override])
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_ema_under_fsdp_is_refused_in_one_line():
    with pytest.raises(ConfigError) as e:
        load_config(ToyRecipe, None, ["train.ema.decay=0.999", "train.parallel=fsdp"])
    assert "train.ema.decay is not supported with train.parallel=fsdp" in str(e.value) and "\n" not in str(e.value)


def test_resuming_with_ema_off_drops_the_saved_ema_in_one_warning(tmp_path, caplog):
    out = tmp_path / "r"
    with one_thread():
        run(toy_config(out, epochs=1, ema=EmaConfig(decay=0.8)))
        with caplog.at_level(logging.WARNING, logger="spatiotemporal.engine"):
            summary, _ = run(toy_config(out, epochs=2, resume=True))
    dropped = [r.getMessage() for r in caplog.records if "EMA is dropped" in r.getMessage()]
    assert len(dropped) == 1 and "train.ema.decay is unset" in dropped[0]
    last = load_checkpoint(out / "checkpoints" / "last.pt")
    assert "ema" not in last and "last_eval_ema" not in last and "final_metrics_ema" not in summary
