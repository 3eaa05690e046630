"""The layout of a run folder, and atomic writes so that nothing half-written is ever read.

A run folder holds::

    .recgym-run         marker: recgym created this folder (``--overwrite`` needs it)
    config.json         the validated TrainConfig
    checkpoints/
      step-000005000/   model.zip, replay_buffer.pkl, state.json
      latest.json       names the newest complete checkpoint (written last: the commit mark)
    tensorboard/        TensorBoard event files
    results.json        final figures (written at the end)
    learning_curve.png  online reward on test users over training steps

Nothing else belongs to recgym: ``--overwrite`` refuses a folder holding
anything else, and removes only these entries.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable

#: the only form of a checkpoint folder's name; ``latest.json`` may name nothing else
STEP_FOLDER = re.compile(r"step-\d{9}")
#: what recgym writes at the top of a run folder
RUN_ENTRIES = frozenset({".recgym-run", "config.json", "checkpoints", "tensorboard", "results.json", "learning_curve.png"})
#: what recgym writes in a checkpoint folder
CHECKPOINT_FILES = frozenset({"model.zip", "replay_buffer.pkl", "state.json"})
#: stable-baselines3's TensorBoard layout: ``run_N/events.out.tfevents...``
TENSORBOARD_RUN = re.compile(r"run_\d+")
TENSORBOARD_FILE = re.compile(r"events\.out\.tfevents\..*")
# temporary entries left by a kill: atomic writes (``.NAME.XXXX.tmp``, as atomic_write names them)
# and checkpoints being written; a name these miss is treated as foreign, so --overwrite refuses
_TEMPORARY_RUN_ENTRY = re.compile(r"\.(config\.json|results\.json|learning_curve\.png|\.recgym-run)\..*\.tmp")
_TEMPORARY_CHECKPOINT = re.compile(r"\.(latest\.json|step-\d{9})\..*\.tmp")
_TEMPORARY_STATE = re.compile(r"\.state\.json\..*\.tmp")


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
    """Paths inside one run folder, and what in it recgym wrote.

    :param root: the run folder (``--out``).
    """

    #: what recgym writes at the top of this kind of run folder (a subclass names its own)
    entries: frozenset[str] = RUN_ENTRIES
    #: temporary files an atomic write of those entries leaves when killed
    temporary_entry: re.Pattern[str] = _TEMPORARY_RUN_ENTRY
    #: the command that writes this kind of run folder (stored in the marker)
    written_by: str = "recgym train"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def marker(self) -> Path:
        return self.root / ".recgym-run"

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
        """The checkpoint folder ``latest.json`` names, or None when there is no pointer yet.

        The pointer may only name a folder ``step-NNNNNNNNN`` of this run's
        ``checkpoints/``: a path elsewhere (absolute, ``../``, a symlink) would
        load another run's model.

        :raises CorruptCheckpointError: the pointer is unreadable, names anything else, or names
            a folder without ``model.zip``.
        """
        if not self.latest.exists():
            return None
        data = read_json(self.latest)
        name = data.get("folder") if isinstance(data, dict) else None
        if not isinstance(name, str) or not STEP_FOLDER.fullmatch(name):
            raise CorruptCheckpointError(
                f"{self.latest} names {name!r}, but a checkpoint pointer may only name a folder step-NNNNNNNNN "
                f"inside {self.checkpoints}; it is not followed. Start again with --overwrite"
            )
        folder = self.checkpoints / name
        model = folder / "model.zip"
        if folder.is_symlink() or model.is_symlink() or not model.is_file():
            raise CorruptCheckpointError(
                f"{self.latest} points to {folder}, which holds no model.zip of its own: the checkpoint is corrupt; "
                "start again with --overwrite"
            )
        return folder

    def mark(self) -> None:
        """Create the run folder (if needed) and its marker: from now on recgym may overwrite it."""
        self.root.mkdir(parents=True, exist_ok=True)
        write_json(self.marker, {
            "written_by": self.written_by,
            "note": f"{self.written_by} --overwrite replaces only folders holding this file, and removes only "
                    "the entries recgym wrote",
        })

    def old_checkpoints(self, keep: Path) -> list[Path]:
        """Checkpoint folders recgym wrote other than ``keep``: older steps and temporary folders of killed runs.

        A folder holding anything recgym does not write there is left alone.
        """
        if not self.checkpoints.is_dir():
            return []
        return sorted(
            p for p in self.checkpoints.iterdir()
            if p != keep and p.is_dir() and not p.is_symlink()
            and (STEP_FOLDER.fullmatch(p.name) or _TEMPORARY_CHECKPOINT.fullmatch(p.name))
            and not self._foreign_in_checkpoint(p)
        )

    def foreign_entries(self) -> list[Path]:
        """Everything in the run folder that recgym did not write (symbolic links included: never followed)."""
        if not self.root.is_dir():
            return []
        foreign = []
        for entry in sorted(self.root.iterdir()):
            if entry.is_symlink():
                foreign.append(entry)
            elif entry.name in self.entries & {"checkpoints", "tensorboard"} and entry.is_dir():
                foreign += self._foreign_in_checkpoints() if entry.name == "checkpoints" else self._foreign_in_tensorboard()
            elif entry.name in self.entries - {"checkpoints", "tensorboard"} and entry.is_file():
                continue
            elif not (self.temporary_entry.fullmatch(entry.name) and entry.is_file()):
                foreign.append(entry)
        return foreign

    def _foreign_in_checkpoints(self) -> list[Path]:
        foreign = []
        for entry in sorted(self.checkpoints.iterdir()):
            if entry.is_symlink():
                foreign.append(entry)
            elif entry.is_dir() and (STEP_FOLDER.fullmatch(entry.name) or _TEMPORARY_CHECKPOINT.fullmatch(entry.name)):
                foreign += self._foreign_in_checkpoint(entry)
            elif not (entry.is_file() and (entry.name == "latest.json" or _TEMPORARY_CHECKPOINT.fullmatch(entry.name))):
                foreign.append(entry)
        return foreign

    @staticmethod
    def _foreign_in_checkpoint(folder: Path) -> list[Path]:
        return [
            f for f in sorted(folder.iterdir())
            if f.is_symlink() or not f.is_file() or not (f.name in CHECKPOINT_FILES or _TEMPORARY_STATE.fullmatch(f.name))
        ]

    def _foreign_in_tensorboard(self) -> list[Path]:
        foreign = []
        for entry in sorted(self.tensorboard.iterdir()):
            if entry.is_symlink() or not entry.is_dir() or not TENSORBOARD_RUN.fullmatch(entry.name):
                foreign.append(entry)
                continue
            foreign += [f for f in sorted(entry.iterdir())
                        if f.is_symlink() or not f.is_file() or not TENSORBOARD_FILE.fullmatch(f.name)]
        return foreign

    def check_overwritable(self) -> None:
        """Refuse to overwrite anything but a run folder recgym created and that holds only recgym's entries.

        :raises FileExistsError: saying why, and what to do instead.
        """
        if self.root.is_symlink():
            # never followed: what --overwrite removes must be the folder named, not wherever a link points
            raise FileExistsError(
                f"--out {self.root} is a symbolic link (to {os.readlink(self.root)}): --overwrite does not replace "
                f"anything through a link; give the folder itself as --out ({self.root.resolve()}), or another --out"
            )
        if not self.root.is_dir():
            raise FileExistsError(f"--out {self.root} exists and is not a folder: choose another --out")
        if not any(self.root.iterdir()):
            return
        if not self.marker.is_file():
            raise FileExistsError(
                f"--overwrite refused: {self.root} is not a recgym run folder (no {self.marker.name} marker), "
                "so nothing in it is deleted; choose a new or empty --out folder (a run folder written before "
                "recgym marked its runs must be deleted by hand)"
            )
        foreign = self.foreign_entries()
        if foreign:
            shown = ", ".join(str(p.relative_to(self.root)) for p in foreign[:10])
            more = f" and {len(foreign) - 10} more" if len(foreign) > 10 else ""
            raise FileExistsError(
                f"--overwrite refused: run folder {self.root} also holds files recgym did not write ({shown}{more}); "
                "move them elsewhere or choose another --out"
            )

    def clear(self) -> None:
        """Remove recgym's entries (after :meth:`check_overwritable`); the marker stays: the folder is still a run."""
        self.check_overwritable()
        for entry in self.root.iterdir():
            if entry.name == self.marker.name:
                continue
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def results(self) -> Path:
        return self.root / "results.json"

    @property
    def curve_png(self) -> Path:
        return self.root / "learning_curve.png"
