"""The layout of a run folder, and atomic writes so that nothing half-written is ever read.

A run folder holds::

    config.json         the validated TrainConfig
    checkpoints/
      step-000005000/   model.zip, replay_buffer.pkl, state.json
      latest.json       names the newest complete checkpoint (written last: the commit mark)
    tensorboard/        TensorBoard event files
    results.json        final figures (written at the end)
    learning_curve.png  online reward on test users over training steps
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


class CorruptCheckpointError(RuntimeError):
    """A checkpoint that exists but cannot be read; it is reported, never loaded."""


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place.

    A rename within one directory is atomic on POSIX, so readers see either the
    old file or the complete new one, even if the process is killed mid-write.
    """
    # One implementation for the whole package (it also gives the file the umask
    # mode, not mkstemp's 0600); imported here so that the rest of this file is unchanged.
    from recgym.data.atomic import atomic_write as shared_atomic_write

    shared_atomic_write(path, write)


def write_json(path: Path, data: Any) -> None:
    """Atomically write ``data`` as indented JSON."""
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n"))


def read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise
    except (OSError, json.JSONDecodeError) as err:
        raise CorruptCheckpointError(f"{path} is unreadable or not valid JSON ({err})") from None


class RunDir:
    """Paths inside one run folder.

    :param root: the run folder (``--out``).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def latest(self) -> Path:
        return self.checkpoints / "latest.json"

    def checkpoint_dir(self, step: int) -> Path:
        return self.checkpoints / f"step-{step:09d}"

    def latest_checkpoint(self) -> Path | None:
        """The newest complete checkpoint folder, or None; raises if the pointer is corrupt."""
        if not self.latest.exists():
            return None
        data = read_json(self.latest)
        folder = self.checkpoints / str(data.get("folder", "")) if isinstance(data, dict) else self.checkpoints
        if not isinstance(data, dict) or not data.get("folder") or not (folder / "model.zip").exists():
            raise CorruptCheckpointError(
                f"{self.latest} points to {folder}, which holds no model.zip: the checkpoint is corrupt; "
                "start again with --overwrite"
            )
        return folder

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def results(self) -> Path:
        return self.root / "results.json"

    @property
    def curve_png(self) -> Path:
        return self.root / "learning_curve.png"
