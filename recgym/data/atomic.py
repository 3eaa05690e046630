"""Atomic file writes: readers see the old file or the complete new one, never half of it.

The one implementation shared by the data caches (checksum memo, parsed logs,
extracted archive members) and the run folders of :mod:`recgym.experiments`.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Callable

# Attempts at a fresh temporary name before giving up (a clash needs 2^32 bad luck).
_NAME_ATTEMPTS = 100


def _create_temp_beside(path: Path) -> Path:
    """Create an empty, not yet used file next to ``path`` with the mode a plain ``open()`` gives.

    ``tempfile.mkstemp`` creates files with mode 0600, which ``os.replace``
    would carry over to the target; asking the kernel for 0666 instead lets it
    apply the process umask (and any default ACL) exactly as for a new file.
    """
    for _ in range(_NAME_ATTEMPTS):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"could not create a temporary file next to {path}: clear stale .{path.name}.*.tmp files")


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place.

    A rename within one directory is atomic on POSIX, so readers see either the
    old file or the complete new one, even if the process is killed mid-write.
    The final file gets the usual mode, ``0o666 & ~umask``, like ``open(path, "w")``.
    The temporary file is removed if ``write`` raises.

    :param path: the target file; its parent directories are created.
    :param write: writes the content to the path it is given (an empty file).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temp_beside(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
