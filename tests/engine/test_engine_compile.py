"""``train.compile``: compiled training matches eager; a failing compiler falls back to eager with one line."""

from __future__ import annotations

import functools
import logging

import pytest
import torch
from engine_toy import ToyModel, one_thread, run, toy_config

from spatiotemporal.engine.compile import CompiledOrEager


def _failing_backend(gm, example_inputs):
    raise RuntimeError("simulated compiler failure\nsecond line of a long report")


def _assert_same_weights(a, b, atol):
    for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        torch.testing.assert_close(va, vb, atol=atol, rtol=0, msg=k)


def test_failing_compilation_falls_back_to_eager_with_one_line(tmp_path, monkeypatch, caplog):
    with one_thread():
        _, eager = run(toy_config(tmp_path / "eager", epochs=1))
        monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend=_failing_backend))
        with caplog.at_level(logging.WARNING, logger="spatiotemporal.engine"):
            _, fallback = run(toy_config(tmp_path / "compiled", epochs=1, compile=True))
    lines = [r.getMessage() for r in caplog.records if "torch.compile failed" in r.getMessage()]
    assert len(lines) == 1 and "simulated compiler failure" in lines[0] and "\n" not in lines[0]
    _assert_same_weights(eager, fallback, atol=0)  # the fallback runs exactly the eager model


def test_an_input_error_is_raised_not_swallowed():
    model = CompiledOrEager(ToyModel(), backend=_failing_backend)
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        model(torch.zeros(2, 5))
    assert model.compiled  # the compiler was not blamed for a bad input
    model(torch.zeros(2, 16))
    assert not model.compiled


@pytest.mark.slow
def test_compiled_training_matches_eager(tmp_path):
    """Inductor (C++ on the CPU) for training steps and evaluation; float sums may be reordered."""
    with one_thread():
        _, eager = run(toy_config(tmp_path / "eager", epochs=1))
        summary, compiled = run(toy_config(tmp_path / "compiled", epochs=1, compile=True))
    _assert_same_weights(eager, compiled, atol=1e-5)
    assert summary["final_metrics"]["count"] == 20
