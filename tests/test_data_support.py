"""Shared helpers of the data-layer tests (no tests here).

Logs of the staged datasets are loaded once per test session through a
private cache directory, so the data tests stay fast and never touch
``~/.cache/recgym``.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
import zipfile
from pathlib import Path

import pytest

SESSION_CACHE = Path(tempfile.mkdtemp(prefix="recgym-test-cache-"))
atexit.register(shutil.rmtree, SESSION_CACHE, True)

ML100K_REQUIRED = ("u.data", "u.item", "u.user", "u.genre")
JESTER5K_CSV = Path("jester") / "jester5k-recommenderlab" / "jester5k-dataset1-layout.csv"


@pytest.fixture(autouse=True)
def isolated_cache(monkeypatch):
    """Every data test uses the session's private cache (never ~/.cache/recgym) and no RECGYM_DATA_DIR."""
    monkeypatch.setenv("RECGYM_CACHE_DIR", str(SESSION_CACHE))
    monkeypatch.delenv("RECGYM_DATA_DIR", raising=False)
    return SESSION_CACHE


@pytest.fixture
def no_download(monkeypatch):
    """Fail the test if anything tries to download."""
    import pooch

    def refuse(*args, **kwargs):
        raise AssertionError(f"unexpected download attempt: {args} {kwargs}")

    monkeypatch.setattr(pooch, "retrieve", refuse)


@functools.lru_cache(maxsize=None)
def staged_log(data_dir: Path, name: str, **kwargs):
    """A staged dataset loaded once per session (warnings of the load are swallowed)."""
    import warnings

    from recgym.data import load

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load(name, data_dir=data_dir, download=False, cache_dir=SESSION_CACHE, **kwargs)


def copy_files(src: Path, dest: Path, names=ML100K_REQUIRED) -> Path:
    """Copy some files into ``dest`` (made writable, since the staged copies are read-only)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(src / name, dest / name)
    return dest


def make_ml100k_zip(data_dir: Path, target: Path, names=ML100K_REQUIRED) -> Path:
    """A zip laid out like the official ml-100k.zip (members under ``ml-100k/``) from the staged files."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("ml-100k/", "")
        for name in names:
            zf.write(data_dir / "ml-100k" / name, f"ml-100k/{name}")
    return target


def write_lines(path: Path, lines, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding=encoding)
    return path
