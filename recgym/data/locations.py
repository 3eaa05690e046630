"""Where dataset files are looked for and where recgym writes its caches.

* ``RECGYM_DATA_DIR``: a directory the user fills with dataset files or
  official archives (overridden by an explicit ``data_dir=`` argument).
* ``RECGYM_CACHE_DIR`` (default ``~/.cache/recgym``): downloads, extracted
  archives, the checksum memo and parsed copies of the logs.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "RECGYM_DATA_DIR"
CACHE_DIR_ENV = "RECGYM_CACHE_DIR"


def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """The cache directory: ``override``, else ``RECGYM_CACHE_DIR``, else ``~/.cache/recgym``.

    :param override: explicit cache directory (wins over the environment).
    """
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "recgym"


def user_data_dir(override: str | os.PathLike[str] | None = None) -> Path | None:
    """The user's data directory: ``override``, else ``RECGYM_DATA_DIR``, else None.

    :param override: explicit data directory (wins over the environment).
    """
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else None
