"""A parsed copy of each loaded log, so that a second load takes well under a second.

The copy is a pickle of the :class:`RatingLog` (columnar numpy/pandas data)
under ``<cache>/parsed/``, keyed by a hash of the dataset name, the parser
version, the checksums of the source files and the load options: a changed
source file or option can never return a stale log. Bump
:data:`PARSER_VERSION` whenever a parser's output changes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
from pathlib import Path
from typing import Any, Mapping

from recgym.data.atomic import atomic_write
from recgym.data.rating_log import RatingLog

log = logging.getLogger(__name__)

# 2: duplicate (user, item) pairs dropped, UTF-8 side files decoded as UTF-8
PARSER_VERSION = 2


def cache_key(name: str, digests: Mapping[str, str], options: Mapping[str, Any]) -> str:
    """Hash identifying a parse: dataset, parser version, source checksums, options."""
    payload = json.dumps(
        {"name": name, "version": PARSER_VERSION, "files": dict(sorted(digests.items())), "options": options},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


def _path(cache: Path, name: str, key: str) -> Path:
    return cache / "parsed" / f"{name}-{key}.pkl"


def read(cache: Path, name: str, key: str) -> RatingLog | None:
    """The cached log, or None when absent or unreadable (it is then rebuilt)."""
    path = _path(cache, name, key)
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as fh:
            rating_log = pickle.load(fh)  # our own cache directory, written by write()
    except Exception as err:  # truncated or from an incompatible version
        log.info("ignoring unreadable parsed cache %s: %s", path, err)
        return None
    return rating_log if isinstance(rating_log, RatingLog) else None


def write(cache: Path, name: str, key: str, rating_log: RatingLog) -> None:
    """Store a parsed log atomically; a read-only cache is not an error."""
    path = _path(cache, name, key)
    def dump(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            pickle.dump(rating_log, fh, protocol=pickle.HIGHEST_PROTOCOL)

    try:
        atomic_write(path, dump)
    except OSError as err:
        log.info("cannot write parsed cache %s: %s", path, err)
