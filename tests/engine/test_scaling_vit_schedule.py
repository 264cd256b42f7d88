"""Scaling ViT's learning-rate schedule equals big_vision's formula at every step, and its recipe parts."""

import math

import pytest
import torch

from spatiotemporal.engine.optim import OptimConfig, build_optimizer
from spatiotemporal.engine.schedule import LRSchedule, ScheduleConfig


def big_vision_rsqrt(step: int, base: float, total: int, warmup: int, cooldown: int, timescale: int) -> float:
    """big_vision ``create_learning_rate_schedule(decay_type="rsqrt")``, written from its definition (Zhai et al.;
    big_vision ``utils.py``): the lr is divided by ``sqrt((step + timescale - warmup) / timescale)`` once ``step``
    is past the warm-up, then multiplied by ``min(1, step / warmup)`` and by ``min(1, (total - step) / cooldown)``."""
    lr = base
    if step > warmup:
        lr = lr * ((step + (timescale - warmup)) / timescale) ** -0.5
    if warmup:
        lr = lr * min(1.0, step / warmup)
    if cooldown:
        lr = lr * min(1.0, (total - step) / cooldown)
    return lr


@pytest.mark.parametrize("total,warmup,cooldown,timescale", [
    (300, 30, 60, 30),  # warm-up, decay, cooldown to zero
    (200, 0, 50, 10),   # no warm-up
    (200, 25, 0, 100),  # no cooldown
    (120, 20, 100, 7),  # cooldown right after the warm-up
    (40, 20, 30, 5),    # a cooldown overlapping the warm-up (a short run): the factors still multiply
])
def test_rsqrt_schedule_equals_big_vision_step_by_step(total, warmup, cooldown, timescale):
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    opt = build_optimizer(model, OptimConfig(name="adafactorbv", lr=0.01, weight_decay=0.03, head_prefix="1.",
                                             head_weight_decay=3.0))
    cfg = ScheduleConfig(name="rsqrt", warmup_steps=warmup, cooldown_steps=cooldown, timescale_steps=timescale,
                         warmup_lr=1e-3)  # not used by rsqrt: big_vision's warm-up starts at zero
    sched = LRSchedule(opt, cfg, base_lr=0.01, steps_per_epoch=10, epochs=total / 10)
    for step in range(total):
        expected = big_vision_rsqrt(step, 0.01, total, warmup, cooldown, timescale)
        for g in opt.param_groups:
            assert math.isclose(g["lr"], expected, rel_tol=1e-12, abs_tol=1e-15), (step, g["lr"], expected)
        opt.step()
        sched.step()
    if cooldown:  # the cooldown ends at zero
        assert sched.lr_at(total) == 0.0


def test_rsqrt_in_epochs_and_default_timescale():
    opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=1.0)
    s = LRSchedule(opt, ScheduleConfig(name="rsqrt", warmup_epochs=1, cooldown_epochs=2, timescale_epochs=1.5),
                   base_lr=1.0, steps_per_epoch=8, epochs=10)
    assert (s.warmup, s.cooldown, s.timescale) == (8, 16, 12)
    assert LRSchedule(opt, ScheduleConfig(name="rsqrt"), 1.0, 8, 10).timescale == 10_000  # big_vision's default


def test_adafactor_big_vision_scales_decoupled_head_and_body_decay_by_the_lr():
    """timm's AdafactorBigVision multiplies weight decay by the current lr: body 0.03 and head 3.0 lr-relative,
    Scaling ViT's decoupled decay. With zero gradients a step only decays: w <- w * (1 - lr * wd)."""
    model = torch.nn.Sequential(torch.nn.Linear(64, 64, bias=False))
    model.add_module("head", torch.nn.Linear(64, 3, bias=False))
    opt = build_optimizer(model, OptimConfig(name="adafactorbv", lr=0.1, weight_decay=0.03, head_weight_decay=3.0))
    assert type(opt).__name__ == "AdafactorBigVision"
    assert sorted(g["weight_decay"] for g in opt.param_groups) == [0.03, 3.0]
    before = [p.detach().clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for (name, p), w0 in zip(model.named_parameters(), before):
        wd = 3.0 if name.startswith("head") else 0.03
        torch.testing.assert_close(p.detach(), w0 * (1 - 0.1 * wd), rtol=1e-6, atol=1e-7)
