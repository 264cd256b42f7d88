import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def official_timesformer_sets() -> dict[str, Path]:
    """Official TimeSformer parity vectors: the in-repo set always; ``../shared/fixtures/timesformer_official``
    beside the checkout as a second, independent set when it exists (required when ``$SPATIO_SHARED`` is set)."""
    sets = {"repo": FIXTURES / "timesformer_official"}
    shared = Path(os.environ.get("SPATIO_SHARED", REPO.parent / "shared")) / "fixtures" / "timesformer_official"
    if "SPATIO_SHARED" in os.environ or shared.is_dir():
        sets["shared"] = shared
    return sets


OFFICIAL_TIMESFORMER_SETS = official_timesformer_sets()


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory):
    """``$SPATIO_CACHE`` (built-in datasets, generated on first use) in a folder of the test module's own; a module
    opts in with ``pytestmark = pytest.mark.usefixtures("module_cache")``."""
    mp = pytest.MonkeyPatch()
    mp.setenv("SPATIO_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session", params=list(OFFICIAL_TIMESFORMER_SETS.values()), ids=list(OFFICIAL_TIMESFORMER_SETS))
def timesformer_official(request) -> Path:
    """A folder of official TimeSformer vectors: ``manifest.json``, ``{attention}.pyth``, ``{attention}_io.pt``."""
    assert (request.param / "manifest.json").is_file(), f"no official TimeSformer vectors at {request.param}"
    return request.param
