"""Small helpers the result scripts share (``python scripts/X.py`` puts this folder on the path)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any


def git_commit(repo: Path) -> str:
    """The checkout's commit (``+dirty`` with uncommitted changes): which code produced a cached figure."""
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON atomically (a temporary file, then a rename): a kill leaves the old file.

    Plain standard library, so the scripts that run under another interpreter (RecBole's) can use it too.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def read_cached_json(path: Path) -> dict[str, Any]:
    """A cached record, or ``{}`` when it is missing or unreadable (a cache miss: the run is redone)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
