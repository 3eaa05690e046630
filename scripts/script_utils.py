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


#: batch sizes of the CPU/GPU tables (scripts/bench_train.py --device-table, scripts/compare_recbole.py devices)
DEVICE_TABLE_BATCH_SIZES = (64, 256, 1024)


def devices_to_time(requested: list[str] | None) -> tuple[list[str], str]:
    """The devices a CPU/GPU table times, and a line that says what this machine has.

    :param requested: devices named on the command line (each checked: ``cuda`` where torch sees no
        GPU is refused with the fix), or None: the CPU, and CUDA too when torch sees a GPU.
    """
    import torch

    from recgym.devices import resolve_device

    if torch.cuda.is_available():
        note = f"GPU: {torch.cuda.get_device_name(0)} (torch {torch.__version__}, CUDA {torch.version.cuda})"
    else:
        note = (f"no GPU present (torch {torch.__version__}: torch.cuda.is_available() is False): "
                "timing the CPU only")
    if requested:
        for device in requested:
            resolve_device(device)
        return list(dict.fromkeys(requested)), note
    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"], note


def synchronize(device: str) -> None:
    """Wait for the GPU's queued work, so that a wall-clock reading covers it (no-op on the CPU)."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
