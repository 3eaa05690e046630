"""Scores of stock RL clients on ML100K-PMF in a fixed budget, against random and greedy-pmf.

    python scripts/clients_scores.py [--steps 5000] [--seed 0] [--out docs/results/clients.md] [--json FILE]

Each client trains for ``--steps`` environment steps (4 environments through
stable-baselines3's ``make_vec_env``; the CleanRL-style DQN on one) from the
training users, with seed ``--seed``, then plays one 20-step episode per
held-out test user (189 users, responses seeded 0), greedily, with recgym's
online protocol (:func:`recgym.evaluation.online.run_episodes`). The figure is
the mean return per episode (normalised reward, so -20..20). ``random`` and
``greedy-pmf`` are recgym's baselines on the dict id; ``random-candidate`` and
``greedy-candidate`` (the candidate with the highest predicted rating in the
observation) are their counterparts on the Flat id, where each step offers K
random available items. Writes the table to ``--out`` (docs/results/clients.md)
and the raw figures beside it as JSON. A few minutes on two CPU cores.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch

import agents
import recgym  # noqa: F401  (registers the ids)
from recgym.data.atomic import atomic_write
from recgym.envs.config import EpisodeConfig
from recgym.envs.registration import FLAT_CANDIDATES
from recgym.evaluation.online import evaluation_env, run_episodes
from recgym.scenario import make_scenario

REPO = Path(__file__).resolve().parents[1]
DICT_ID, FLAT_ID = "recgym/ML100K-PMF-v0", "recgym/ML100K-PMF-Flat-v0"


class Predictor:
    """SB3's ``predict`` interface over a function of batched observations (what the protocol calls)."""

    def __init__(self, act: Callable[[Any], np.ndarray]) -> None:
        self.act = act

    def predict(self, obs: Any, deterministic: bool = True) -> tuple[np.ndarray, None]:
        return self.act(obs), None


def cleanrl_dqn(steps: int, seed: int) -> Predictor:
    """CleanRL's ``dqn.py`` in a few lines: an MLP on the Box, a replay buffer, a target network."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    env = gym.make(FLAT_ID)
    n_obs, n_actions = env.observation_space.shape[0], int(env.action_space.n)

    def mlp() -> torch.nn.Module:
        return torch.nn.Sequential(torch.nn.Linear(n_obs, 120), torch.nn.ReLU(), torch.nn.Linear(120, 84),
                                   torch.nn.ReLU(), torch.nn.Linear(84, n_actions))

    q, target = mlp(), mlp()
    target.load_state_dict(q.state_dict())
    optimiser = torch.optim.Adam(q.parameters(), lr=1e-3)
    size, batch, gamma, start = min(steps, 10_000), 64, 0.9, 300
    obs_buf, next_buf = np.zeros((size, n_obs), np.float32), np.zeros((size, n_obs), np.float32)
    act_buf, rew_buf, done_buf = np.zeros(size, np.int64), np.zeros(size, np.float32), np.zeros(size, np.float32)
    obs, _ = env.reset(seed=seed)
    for step in range(steps):
        if rng.random() < max(0.05, 1.0 - step / (0.5 * steps)):
            action = int(rng.integers(n_actions))
        else:
            with torch.no_grad():
                action = int(q(torch.as_tensor(obs)[None]).argmax())
        next_obs, reward, terminated, truncated, _ = env.step(action)
        i = step % size
        obs_buf[i], next_buf[i], act_buf[i], rew_buf[i], done_buf[i] = obs, next_obs, action, reward, terminated
        obs = env.reset()[0] if terminated or truncated else next_obs
        if step >= start and step % 4 == 0:
            idx = rng.integers(min(step + 1, size), size=batch)
            with torch.no_grad():
                best = target(torch.as_tensor(next_buf[idx])).max(dim=1).values
                td_target = torch.as_tensor(rew_buf[idx]) + gamma * best * (1 - torch.as_tensor(done_buf[idx]))
            value = q(torch.as_tensor(obs_buf[idx])).gather(1, torch.as_tensor(act_buf[idx])[:, None])[:, 0]
            loss = torch.nn.functional.mse_loss(value, td_target)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if step % 200 == 0:
                target.load_state_dict(q.state_dict())

    def greedy(batch_obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return q(torch.as_tensor(batch_obs)).argmax(dim=1).numpy()

    return Predictor(greedy)


def sb3_client(name: str, steps: int, seed: int) -> Any:
    """Train one stable-baselines3 / sb3-contrib client as a user would write it."""
    import stable_baselines3 as sb3
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.env_util import make_vec_env

    if name == "SB3 DQN MlpPolicy":
        model = sb3.DQN("MlpPolicy", make_vec_env(FLAT_ID, n_envs=4, seed=seed), learning_starts=500,
                        buffer_size=10_000, target_update_interval=500, exploration_fraction=0.3, learning_rate=1e-3,
                        seed=seed)
    elif name == "SB3 PPO MlpPolicy":
        model = sb3.PPO("MlpPolicy", make_vec_env(FLAT_ID, n_envs=4, seed=seed), n_steps=64, batch_size=64,
                        learning_rate=3e-3, seed=seed)
    elif name == "SB3 A2C MlpPolicy":
        model = sb3.A2C("MlpPolicy", make_vec_env(FLAT_ID, n_envs=4, seed=seed), learning_rate=3e-3, seed=seed)
    elif name == "SB3 PPO MultiInputPolicy, no masks":
        model = sb3.PPO("MultiInputPolicy", make_vec_env(DICT_ID, n_envs=4, seed=seed), seed=seed)
    elif name == "MaskablePPO MultiInputPolicy":
        model = MaskablePPO("MultiInputPolicy", make_vec_env(DICT_ID, n_envs=4, seed=seed), seed=seed)
    else:
        raise ValueError(f"unknown client {name!r}")
    return model.learn(steps)


# (client, id it plays, episode keywords of that id)
FLAT = {"observation": "features", "candidates": FLAT_CANDIDATES}
CLIENTS = [
    ("random", DICT_ID, {}),
    ("greedy-pmf", DICT_ID, {}),
    ("random-candidate", FLAT_ID, FLAT),
    ("greedy-candidate", FLAT_ID, FLAT),
    ("CleanRL-style DQN", FLAT_ID, FLAT),
    ("SB3 DQN MlpPolicy", FLAT_ID, FLAT),
    ("SB3 PPO MlpPolicy", FLAT_ID, FLAT),
    ("SB3 A2C MlpPolicy", FLAT_ID, FLAT),
    ("MaskablePPO MultiInputPolicy", DICT_ID, {}),
    ("SB3 PPO MultiInputPolicy, no masks", DICT_ID, {}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5000, help="training steps of every learning client")
    parser.add_argument("--seed", type=int, default=0, help="seed of the networks, exploration and training envs")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results" / "clients.md")
    parser.add_argument("--json", type=Path, default=REPO / "runs" / "clients_scores.json", help="raw figures")
    args = parser.parse_args()
    torch.set_num_threads(1)
    scenario = make_scenario("ml-100k", "pmf")
    rows = []
    for name, env_id, episode in CLIENTS:
        started = time.perf_counter()
        env = evaluation_env(scenario, EpisodeConfig(**episode), users="test")
        if name in ("random", "greedy-pmf"):
            policy: Any = agents.make(name, env, seed=args.seed, scenario=scenario)
            steps = 0
        elif name == "random-candidate":
            rng = np.random.default_rng(args.seed)
            policy, steps = Predictor(lambda obs: rng.integers(FLAT_CANDIDATES, size=len(obs))), 0
        elif name == "greedy-candidate":
            predicted = [i for i, n in enumerate(env.features.names) if n.endswith(".predicted")]
            policy, steps = Predictor(lambda obs: obs[:, predicted].argmax(axis=1)), 0
        elif name == "CleanRL-style DQN":
            policy, steps = cleanrl_dqn(args.steps, args.seed), args.steps
        else:
            policy, steps = sb3_client(name, args.steps, args.seed), args.steps
        result = run_episodes(policy, env, seed=0)
        rows.append({"client": name, "id": env_id,
                     "steps": steps, "return": result.avg_reward_per_episode,
                     "seconds": round(time.perf_counter() - started, 1), "episodes": result.episodes})
        print(f"{name:42s} {rows[-1]['return']:7.2f}  ({rows[-1]['seconds']} s)", flush=True)
    lines = [
        "# Stock clients on ML100K-PMF",
        "",
        f"Written by `python scripts/clients_scores.py --steps {args.steps} --seed {args.seed}`. Mean return per",
        f"20-step episode (normalised reward, -20..20) of one episode per held-out test user ({rows[0]['episodes']}",
        "users, responses seeded 0), acting greedily after training for the stated steps on the training users",
        "(4 environments through `make_vec_env`; the CleanRL-style DQN on one). Flat ids offer K = "
        f"{FLAT_CANDIDATES} random available items per step.",
        "",
        "| client | id | training steps | mean return per episode |",
        "|---|---|---:|---:|",
    ] + [f"| {r['client']} | `{r['id']}` | {r['steps']:,} | {r['return']:.2f} |" for r in rows]
    atomic_write(args.out, lambda p: p.write_text("\n".join(lines) + "\n"))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.json, lambda p: p.write_text(json.dumps(
        {"steps": args.steps, "seed": args.seed, "rows": rows}, indent=1)))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
