"""``recgym demo`` (what ``make demo`` runs): train DRR and evaluate it against the baselines.

The demo runs on MovieLens-100K when its files are found or can be downloaded.
Otherwise (offline, say) it says so in one line, with how to supply the data,
and runs the same commands on the synthetic log, so that the first command a
newcomer types always shows the whole system working.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from recgym.data.errors import DatasetNotFoundError
from recgym.data.fetch import resolve
from recgym.data.loading import LOADERS
from recgym.data.registry import get_info

DEMO_ENV = "recgym/ML100K-PMF-v0"
#: generated on the spot: needs no download
OFFLINE_ENV = "recgym/Synthetic-PMF-v0"
DEMO_AGENT, DEMO_ENCODER = "drr", "drr-ave"
DEMO_BASELINES = ("random", "popularity", "greedy-pmf", "oracle-greedy")


def demo_env(data_dir: str | None = None, progress: bool = True) -> str:
    """The demo's environment: ML-100K's when its files are here or can be fetched, else the synthetic one.

    :param data_dir: data directory (default ``RECGYM_DATA_DIR``, then the cache).
    :param progress: show a download progress bar.
    :returns: an environment id; for the fallback, one line on stderr says why and how to supply ML-100K.
    """
    info = get_info("ml-100k")
    fetch_log = logging.getLogger("recgym.data.fetch")
    level = fetch_log.level
    fetch_log.setLevel(logging.ERROR)  # each failed mirror logs a warning: the one line below says it all
    try:
        resolve(info, info.required, LOADERS[info.name].optional, data_dir=data_dir, download=True, progress=progress)
    except DatasetNotFoundError:
        print(
            "recgym demo: ML-100K could not be fetched (offline?); to use it, put its files in ml-100k/ under "
            "RECGYM_DATA_DIR (or --data-dir), or run `recgym datasets fetch ml-100k` once online. "
            f"Running the same demo on {OFFLINE_ENV} instead.",
            file=sys.stderr,
            flush=True,
        )
        return OFFLINE_ENV
    finally:
        fetch_log.setLevel(level)
    return DEMO_ENV


def demo_commands(env: str, out: Path, steps: int, seed: int, progress: bool = True,
                  data_dir: str | None = None) -> list[list[str]]:
    """The demo's two commands, ``recgym train`` then ``recgym evaluate``, as argument lists.

    :param env: the environment id (:func:`demo_env`).
    :param out: the run folder (replaced when recgym wrote it: ``--overwrite``).
    :param steps: training steps.
    :param seed: the run's seed.
    :param progress: show the progress bar.
    :param data_dir: data directory passed on to ``recgym train``.
    """
    train = ["train", "--env", env, "--agent", DEMO_AGENT, "--encoder", DEMO_ENCODER, "--steps", str(steps),
             "--seed", str(seed), "--out", str(out), "--overwrite"]
    if data_dir is not None:
        train += ["--data-dir", str(data_dir)]
    if not progress:
        train.append("--no-progress")
    evaluate = ["evaluate", "--run", str(out), "--protocol", "online", "--baselines", *DEMO_BASELINES]
    return [train, evaluate]
