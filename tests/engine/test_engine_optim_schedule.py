"""Optimisers (timm factory, weight-decay groups) and per-step lr schedules."""

from __future__ import annotations

import math

import pytest
import timm
import torch
from timm.optim import Adafactor as TimmAdafactor
from timm.optim import AdafactorBigVision, Lamb
from torch import nn

from spatiotemporal.engine import LRSchedule, OptimConfig, ScheduleConfig, build_optimizer, param_groups


class HeadNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, 4, 8))
        self.body = nn.Linear(8, 8)
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 3)

    def no_weight_decay(self):
        return {"pos_embed"}


def _sgd(lr=0.1):
    return torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=lr)


def test_warmup_cosine_values():
    cfg = ScheduleConfig(name="cosine", warmup_epochs=1, warmup_lr=1e-4, min_lr=1e-5)
    opt = _sgd()
    s = LRSchedule(opt, cfg, base_lr=1e-2, steps_per_epoch=10, epochs=5)  # 50 steps, 10 warm-up
    lrs = []
    for _ in range(50):
        lrs.append(opt.param_groups[0]["lr"])
        s.step()
    assert lrs[0] == pytest.approx(1e-4)
    assert lrs[5] == pytest.approx(1e-4 + (1e-2 - 1e-4) * 0.5)
    assert lrs[10] == pytest.approx(1e-2)
    for k in (10, 23, 30, 49):
        expected = 1e-5 + (1e-2 - 1e-5) * 0.5 * (1 + math.cos(math.pi * (k - 10) / 40))
        assert lrs[k] == pytest.approx(expected)
    assert all(a > b for a, b in zip(lrs[10:], lrs[11:]))  # monotone decay after warm-up
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-5)  # end of training


def test_timesformer_step_schedule():
    """Official recipe: lr 0.005, steps [0, 11, 14], lrs [1, 0.1, 0.01], 15 epochs, per-iteration update."""
    cfg = ScheduleConfig(name="step", steps=[0, 11, 14], lrs=[1, 0.1, 0.01])
    s = LRSchedule(_sgd(), cfg, base_lr=0.005, steps_per_epoch=100, epochs=15)
    assert s.lr_at(0) == pytest.approx(0.005)
    assert s.lr_at(1099) == pytest.approx(0.005)  # epoch 10.99
    assert s.lr_at(1100) == pytest.approx(0.0005)  # epoch 11.0
    assert s.lr_at(1399) == pytest.approx(0.0005)
    assert s.lr_at(1400) == pytest.approx(0.00005)
    assert s.lr_at(1499) == pytest.approx(0.00005)
    g = LRSchedule(_sgd(), ScheduleConfig(name="step", milestones=[2, 4], gamma=0.5), 1.0, 10, 6)
    assert [g.lr_at(e * 10) for e in range(6)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    with pytest.raises(ValueError, match="same length"):
        LRSchedule(_sgd(), ScheduleConfig(name="step", steps=[0, 1], lrs=[1]), 1.0, 1, 1)


def test_schedule_state_dict_round_trip():
    cfg = ScheduleConfig(name="cosine", warmup_steps=3)
    opt_a, opt_b = _sgd(), _sgd()
    a = LRSchedule(opt_a, cfg, 0.1, 7, 3)
    for _ in range(9):
        a.step()
    b = LRSchedule(opt_b, cfg, 0.1, 7, 3)
    b.load_state_dict(a.state_dict())
    assert b.last_step == 9 and opt_b.param_groups[0]["lr"] == opt_a.param_groups[0]["lr"]
    a.step()
    b.step()
    assert b.get_last_lr() == a.get_last_lr()
    with pytest.raises(ValueError, match="steps per epoch"):
        LRSchedule(_sgd(), cfg, 0.1, 8, 3).load_state_dict(a.state_dict())


def test_optimizer_construction():
    model = HeadNet()
    sgd = build_optimizer(model, OptimConfig(name="sgd", lr=0.005, weight_decay=1e-4))
    assert isinstance(sgd, torch.optim.SGD)
    assert all(g["nesterov"] and g["momentum"] == 0.9 for g in sgd.param_groups)
    assert isinstance(build_optimizer(model, OptimConfig(name="lamb", lr=1e-3, weight_decay=0.02)), Lamb)
    assert isinstance(build_optimizer(model, OptimConfig(name="adafactor")), TimmAdafactor)
    assert isinstance(build_optimizer(model, OptimConfig(name="adafactorbv")), AdafactorBigVision)
    adamw = build_optimizer(model, OptimConfig(name="adamw", betas=(0.9, 0.95), eps=1e-6))
    assert isinstance(adamw, torch.optim.AdamW) and adamw.param_groups[0]["betas"] == (0.9, 0.95)
    # every optimiser takes a real step
    for name in ("sgd", "lamb", "adafactor", "adafactorbv", "adamw"):
        m = HeadNet()
        opt = build_optimizer(m, OptimConfig(name=name, lr=0.01))
        before = m.body.weight.detach().clone()
        m.head(m.norm(m.body(torch.randn(2, 8)))).sum().backward()
        opt.step()
        assert not torch.equal(before, m.body.weight), name


def _decay_of(opt, model):
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: g["weight_decay"] for g in opt.param_groups for p in g["params"]}


def test_weight_decay_groups_and_decoupled_head():
    model = HeadNet()
    opt = build_optimizer(model, OptimConfig(name="adamw", weight_decay=0.03, head_weight_decay=3.0))
    wd = _decay_of(opt, model)
    assert wd == {"pos_embed": 0.0, "body.weight": 0.03, "body.bias": 0.0, "norm.weight": 0.0,
                  "norm.bias": 0.0, "head.weight": 3.0, "head.bias": 0.0}
    # TimeSformer official: decay on everything, no_weight_decay() ignored
    wd = _decay_of(build_optimizer(model, OptimConfig(name="sgd", weight_decay=1e-4, no_decay_1d=False,
                                                      use_no_weight_decay=False)), model)
    assert set(wd.values()) == {1e-4}


def test_layer_decay_groups_scale_the_schedule():
    """timm layer-wise decay on a real ViT: the schedule multiplies each group's lr by its lr_scale."""
    vit = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=16, depth=2, num_classes=3)
    cfg = OptimConfig(name="adamw", lr=1e-3, weight_decay=0.05, layer_decay=0.5)
    groups = param_groups(vit, cfg)
    scales = sorted({g["lr_scale"] for g in groups})
    assert scales == pytest.approx([0.125, 0.25, 0.5, 1.0])  # embed, block 0, block 1, head (depth 2)
    opt = build_optimizer(vit, cfg)
    sched = LRSchedule(opt, ScheduleConfig(name="constant"), 1e-3, 5, 1)
    for g in opt.param_groups:
        assert g["lr"] == pytest.approx(1e-3 * g["lr_scale"])
    sched.step()
    assert max(sched.get_last_lr()) == pytest.approx(1e-3)
