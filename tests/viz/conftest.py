"""Data the viz CLI tests share: the built-in videos and a small CT-phantom set, each generated once per session."""

from __future__ import annotations

import pytest

from spatiotemporal.data.video import ensure_builtin_video_dataset
from spatiotemporal.data.volume import PhantomSpec, write_phantom_dataset


@pytest.fixture(scope="session")
def video_cache(tmp_path_factory):
    """A cache folder holding the built-in video set (its ``--data-root``)."""
    root = tmp_path_factory.mktemp("cache")
    ensure_builtin_video_dataset(root)
    return root


@pytest.fixture(scope="session")
def volume_root(tmp_path_factory):
    """Three small CT phantoms (1 train, 2 val) in the BTCV layout."""
    root = tmp_path_factory.mktemp("btcv")
    write_phantom_dataset(root, PhantomSpec(n_train=1, n_val=2, shape=(40, 40, 16), spacing=(3.0, 3.0, 7.0)))
    return root
