import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
SHARED_DATA = ROOT.parent / "shared" / "data"

os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="Rewrite golden files (error messages, DOT renders, cost tables) instead of comparing.")


@pytest.fixture
def update_golden(request):
    return request.config.getoption("--update-golden")


@pytest.fixture(autouse=True)
def _torch_threads():
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        pass
    yield


def shared_data(name: str) -> Path:
    """A file of ../shared/data, or skip the test when this clone has none beside it."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} not present (tests on real data need ../shared/data beside the clone)")
    return path
