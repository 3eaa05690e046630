"""Shared fixtures: the staged real datasets and small synthetic logs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_datasets_dir() -> Path | None:
    """The directory of staged real data: ``RECGYM_DATA_DIR`` or ``../shared/datasets``."""
    env = os.environ.get("RECGYM_DATA_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "datasets")
    for path in candidates:
        if (path / "ml-100k" / "u.data").exists():
            return path
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Directory holding the staged real datasets; tests that need it skip without it."""
    path = shared_datasets_dir()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI=true but no staged datasets: set RECGYM_DATA_DIR or provide ../shared/datasets")
        pytest.skip("real datasets not staged: set RECGYM_DATA_DIR to a directory with ml-100k/")
    return path


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's tests (small models run faster so, and the 2-core CI stays quiet)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def synthetic_log():
    from recgym.data import make_synthetic_log

    return make_synthetic_log(n_users=120, n_items=150, density=0.15, seed=0)


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Keep the test run's caches (fitted simulators, parsed data) out of the user's cache."""
    if "RECGYM_CACHE_DIR" in os.environ:
        yield
        return
    os.environ["RECGYM_CACHE_DIR"] = str(tmp_path_factory.mktemp("recgym-cache"))
    yield
    os.environ.pop("RECGYM_CACHE_DIR", None)
