"""Small helpers the result scripts share (``python scripts/X.py`` puts this folder on the path)."""

from __future__ import annotations

import subprocess
from pathlib import Path


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
