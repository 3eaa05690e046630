"""File digests (SHA-256, MD5, git blob id) and verification against registered values.

Digests are memoised in ``<cache>/checksums.json`` under the file's absolute
path, size and modification time, so a large file is hashed once and later
loads only ``stat`` it. A changed file (new size or mtime) is hashed again; a
same-size edit with the mtime put back is only caught by a rehash that ignores
the memo (``cached_digest(..., refresh=True)``, ``recgym datasets verify``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from pathlib import Path

from recgym.data.atomic import atomic_write
from recgym.data.errors import ChecksumError

log = logging.getLogger(__name__)

ALGORITHMS = ("sha256", "md5", "git-blob")
_CHUNK = 1 << 20
_MEMO_NAME = "checksums.json"
_lock = threading.Lock()


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, streamed in 1 MiB chunks.

    ``git-blob`` is the id ``git hash-object`` prints: ``sha1(b"blob <size>\\0" + data)``,
    the form in which the ML-1M ``ratings.dat`` checksum is known.

    :param path: the file.
    :param algorithm: one of ``"sha256"``, ``"md5"``, ``"git-blob"``.
    """
    if algorithm == "git-blob":
        h = hashlib.sha1()
        h.update(b"blob %d\0" % Path(path).stat().st_size)
    elif algorithm in ("sha256", "md5"):
        h = hashlib.new(algorithm)
    else:
        raise ValueError(f"unknown checksum algorithm {algorithm!r}; known: {ALGORITHMS}")
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _load_memo(memo_path: Path) -> dict:
    try:
        return json.loads(memo_path.read_text())
    except (OSError, ValueError):
        return {}


def _save_memo(memo_path: Path, memo: dict) -> None:
    # Atomic replace, so concurrent loaders never read a half-written memo.
    try:
        atomic_write(memo_path, lambda tmp: tmp.write_text(json.dumps(memo)))
    except OSError as err:  # a read-only cache only costs speed
        log.debug("cannot write checksum memo %s: %s", memo_path, err)


def cached_digest(path: Path, algorithm: str, cache: Path | None, refresh: bool = False) -> str:
    """:func:`file_digest`, memoised under ``(path, size, mtime)`` in ``cache``.

    The memo trusts that a file with the same path, size and modification time
    has the same content; an edit that keeps the size and restores the mtime
    goes unnoticed until ``refresh`` (``recgym datasets verify``) rehashes it.

    :param path: the file.
    :param algorithm: one of :data:`ALGORITHMS`.
    :param cache: the cache directory holding the memo, or None for no memo.
    :param refresh: hash the file even if the memo knows it, and store the fresh digest.
    """
    if cache is None:
        return file_digest(path, algorithm)
    path = Path(path).resolve()
    st = path.stat()
    stamp = [st.st_size, st.st_mtime_ns]
    memo_path = cache / _MEMO_NAME
    with _lock:
        entry = _load_memo(memo_path).get(str(path))
    if not refresh and entry and entry.get("stamp") == stamp and algorithm in entry:
        return entry[algorithm]
    digest = file_digest(path, algorithm)
    with _lock:
        memo = _load_memo(memo_path)
        entry = memo.get(str(path))
        if not entry or entry.get("stamp") != stamp or refresh:  # other algorithms' digests may be stale too
            entry = {"stamp": stamp}
        entry[algorithm] = digest
        memo[str(path)] = entry
        _save_memo(memo_path, memo)
    return digest


def verify(path: Path, algorithm: str, expected: str, cache: Path | None = None) -> str:
    """Check a file against a registered digest; raise :class:`ChecksumError` if it differs.

    :param path: the file.
    :param algorithm: one of :data:`ALGORITHMS`.
    :param expected: the registered hex digest.
    :param cache: cache directory for the digest memo (None: always hash).
    :returns: the digest.
    """
    actual = cached_digest(path, algorithm, cache)
    if actual.lower() != expected.lower():
        raise ChecksumError(path, algorithm, expected, actual)
    return actual
