"""Small builders shared by the test modules."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np

from recgym.evaluation.transitions import available_items
from recgym.data.rating_log import RatingLog
from recgym.scenario import Scenario
from simulators.base import UserSimulator
from simulators.pmf import PMFSimulator


def scenario_from_parts(
    log: RatingLog, simulator: UserSimulator, train_users: np.ndarray, test_users: np.ndarray,
    embedding_fit: str = "train", dim: int = 16,
) -> Scenario:
    """A scenario from a log, a fitted simulator and a user split, with its embedding model fitted here."""
    rating_model = simulator if isinstance(simulator, PMFSimulator) else PMFSimulator(dim=dim).fit(log)
    if embedding_fit == "all":
        embedding = rating_model
    else:
        df = log.interactions
        train_log = log.with_interactions(df[np.isin(df["user"].to_numpy(), train_users)])
        embedding = PMFSimulator(dim=rating_model.dim, reg=rating_model.reg).fit(train_log)
    return Scenario(log, np.sort(train_users), np.sort(test_users), simulator, rating_model, embedding, embedding_fit)


def cell_whose_seed_1_worker_is_killed(task: Any) -> dict[str, Any]:
    """A stand-in for ``execute_cell`` in ``recgym compare``'s worker processes (it must be importable there).

    The seed-1 cell's worker kills itself (``kill -9``); the seed-0 cell waits until then, a little longer, and
    finishes. Only the killed worker's cell may fail.
    """
    from recgym.experiments.compare.cells import base_record

    dying = Path(task.out) / "seed-1-worker-dying"
    if task.cell.seed == 1:
        dying.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    deadline = time.monotonic() + 120
    while not dying.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(2.0)  # the other worker is dead, and its death noticed, before this cell ends
    return {**base_record(task.cell), "status": "done", "figures": {"online": {"avg_reward_per_step": 0.5}},
            "seconds": 0.0, "finished": time.time()}


#: the small synthetic log the logged-data tests (off-policy estimators, offline RL) record on
LOGGED_SYNTHETIC = dict(n_users=60, n_items=50, density=0.3, seed=0)


def logged_data_run() -> Any:
    """The run setup (scenario and 6-step discrete episodes) the logged-data tests record their logs on."""
    from recgym.experiments.setup import make_run_setup

    return make_run_setup("recgym/Synthetic-PMF-v0", {"dataset_kwargs": LOGGED_SYNTHETIC, "max_steps": 6}, "discrete")


def greedy_pmf_for(run: Any) -> Any:
    """greedy-pmf on ``run``'s scenario: the policy whose softmax the logged-data tests log."""
    from agents.baselines import GreedyPMFAgent

    return GreedyPMFAgent(run.training_env(1), scenario=run.scenario)


def train_run(config: Any, out: Path | str, **options: Any) -> dict[str, Any]:
    """``recgym train`` from Python: set the run up from ``config``, train it into ``out``, return its results."""
    from recgym.experiments.setup import RunSetup
    from recgym.experiments.train import train

    return train(RunSetup.from_config(config), config, out, **options).results


class AvailabilityWatch:
    """Passes ``predict`` through, recording whether every chosen item was available (mask less consumed)."""

    def __init__(self, policy):
        self.policy = policy
        self.choices = 0
        self.unavailable = 0

    def predict(self, observation, state=None, episode_start=None, deterministic=True, action_masks=None):
        actions, _ = self.policy.predict(observation, deterministic=deterministic, action_masks=action_masks)
        available = available_items(observation, action_masks)
        self.choices += actions.size
        self.unavailable += int((~available[np.arange(actions.size), actions]).sum())
        return actions, None
