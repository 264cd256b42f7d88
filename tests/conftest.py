import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """``../shared/fixtures`` beside the checkout (or ``$SPATIO_SHARED/fixtures``)."""
    root = Path(os.environ.get("SPATIO_SHARED", REPO.parent / "shared"))
    path = root / "fixtures"
    assert path.is_dir(), f"parity fixtures not found at {path}; set SPATIO_SHARED to the shared/ folder"
    return path
