"""The one device resolver and the one seeding entry."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from spatiotemporal import engine
from spatiotemporal.data.seeding import seed_item
from spatiotemporal.utils import resolve_device, seed_everything


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="'tpu': expected auto, cpu, cuda or cuda:N"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda:1")
    assert engine.resolve_device is resolve_device  # the engine re-exports the one resolver


def test_seed_everything_seeds_python_numpy_and_torch():
    def draws():
        return random.random(), float(np.random.rand()), torch.rand(2).tolist()

    seed_everything(2**40 + 7)  # NumPy takes the seed mod 2**32
    a = draws()
    seed_everything(2**40 + 7)
    assert draws() == a
    seed_everything(8)
    assert draws() != a
    assert engine.seed_everything is seed_everything


def test_item_seeding_goes_through_the_one_entry(monkeypatch):
    import spatiotemporal.data.seeding as data_seeding

    seen = []
    monkeypatch.setattr(data_seeding, "seed_everything", seen.append)
    seed_item(1, 2, 3)
    assert seen == [data_seeding.item_seed(1, 2, 3)]
