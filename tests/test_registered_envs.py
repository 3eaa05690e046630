"""Every registered id passes Gymnasium's and stable-baselines3's environment checkers.

Real staged data where it exists (ML-100K, Jester Dataset 4, the Jester
Dataset 1 layout sample); ML-1M's ratings and Yahoo! R3 on files generated
here in the exact official format.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import recgym  # noqa: F401
from recgym.envs.registration import DATASET_IDS, SIMULATOR_IDS, SIMULATOR_V1_IDS

JESTER_SAMPLE = Path("jester") / "jester5k-recommenderlab" / "jester5k-dataset1-layout.csv"


def write_ml1m(folder: Path, staged: Path, n_users: int = 80, seed: int = 0) -> None:
    """An ml-1m folder: the staged movies.dat / users.dat and a generated ratings.dat (UserID::MovieID::Rating::Timestamp)."""
    folder.mkdir(parents=True)
    for name in ("movies.dat", "users.dat"):
        shutil.copyfile(staged / "ml-1m" / name, folder / name)
    movie_ids = [int(line.split(b"::")[0]) for line in (staged / "ml-1m" / "movies.dat").read_bytes().splitlines()[:150]]
    rng = np.random.default_rng(seed)
    lines = []
    for user in range(1, n_users + 1):
        for movie in rng.choice(movie_ids, size=25, replace=False):
            lines.append(f"{user}::{movie}::{rng.integers(1, 6)}::{978300000 + int(rng.integers(0, 10**6))}")
    (folder / "ratings.dat").write_text("\n".join(lines) + "\n", encoding="latin-1")


def write_yahoo(folder: Path, n_users: int = 80, n_songs: int = 120, seed: int = 0) -> None:
    """Yahoo! R3's two files: tab-separated ``user song rating``, 1-based ids."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    train, test = [], []
    for user in range(1, n_users + 1):
        songs = rng.choice(np.arange(1, n_songs + 1), size=30, replace=False)
        train += [f"{user}\t{s}\t{rng.integers(1, 6)}" for s in songs[:20]]
        test += [f"{user}\t{s}\t{rng.integers(1, 6)}" for s in songs[20:]]
    (folder / "ydata-ymusic-rating-study-v1_0-train.txt").write_text("\n".join(train) + "\n")
    (folder / "ydata-ymusic-rating-study-v1_0-test.txt").write_text("\n".join(test) + "\n")


@pytest.fixture(scope="module")
def generated_dir(tmp_path_factory, data_dir) -> Path:
    root = tmp_path_factory.mktemp("generated-data")
    write_ml1m(root / "ml-1m", data_dir)
    write_yahoo(root / "yahoo-r3")
    return root


def make_kwargs(dataset_id: str, data_dir: Path, generated: Path) -> dict:
    if dataset_id in ("ML1M", "YahooR3"):
        return {"data_dir": generated, "dataset_kwargs": {"verify": False}}
    if dataset_id == "Jester":
        return {"path": data_dir / JESTER_SAMPLE}
    if dataset_id == "Synthetic":
        return {"dataset_kwargs": {"n_users": 60, "n_items": 80}}
    return {"data_dir": data_dir}


@pytest.mark.parametrize("simulator_id", [f"{s}-v0" for s in SIMULATOR_IDS] + [f"{s}-v1" for s in SIMULATOR_V1_IDS])
@pytest.mark.parametrize("dataset_id", list(DATASET_IDS))
def test_registered_id_passes_both_env_checkers(dataset_id, simulator_id, data_dir, generated_dir):
    env_id = f"recgym/{dataset_id}-{simulator_id}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # loader notes (e.g. Jester-4 clipping) are documented elsewhere
        env = gym.make(env_id, max_steps=8, **make_kwargs(dataset_id, data_dir, generated_dir))
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=False)
    simulator = env.unwrapped.simulator
    obs, _ = env.reset(seed=0)
    env.action_space.seed(0)
    steps = 0
    term = trunc = False
    while not (term or trunc):
        obs, reward, term, trunc, info = env.step(env.action_space.sample())
        steps += 1
        assert env.unwrapped.observation_space.contains(obs)
        if simulator_id.startswith("Behavior"):
            # the reward of the behaviour the user showed (skip / click / purchase), nothing else
            assert reward == simulator.config.behavior_rewards[info["behavior"]], (reward, info)
        else:
            # the normalised rating of the step's item, so within [-1, 1]
            assert reward == pytest.approx(float(simulator.scale.to_reward(info["rating"]))), (reward, info)
            assert -1.0 - 1e-9 <= reward <= 1.0 + 1e-9
        assert steps <= 8, "the episode outlived max_steps=8"
    # before max_steps only the user leaving ends an episode; truncation comes at max_steps exactly
    assert term or steps == 8, (steps, term, trunc)
    assert not trunc or steps == 8, (steps, term, trunc)
