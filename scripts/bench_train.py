"""Training speed: environment steps per second of the learning agents with the DRR-ave state.

    python scripts/bench_train.py [--dataset ml-100k|synthetic] [--agents dqn drr] [--n-envs 32] [--steps 20000]

The best published RL-recommender library reports about 15 steps/s for DDPG and
54 steps/s for DQN on a GPU (EasyRL4Rec's logs on ML-1M); recgym's targets on
2 CPU cores are 20x that: >= 300 steps/s (DDPG/DRR) and >= 1,000 steps/s (DQN).
Timing starts after a warm-up that fills the replay buffer past
``learning_starts``, so it measures steady-state training: acting, stepping the
simulated users, and the gradient updates at each agent's default replay ratio.
``--dataset synthetic`` uses a synthetic log of ML-100K's size when the real
files are not at hand.
"""

from __future__ import annotations

import argparse
import os
import time

import agents
from recgym.envs import RecommendationVectorEnv
from recgym.scenario import Scenario, make_scenario

PUBLISHED_GPU = {"dqn": 54.0, "drr": 15.0, "ddpg": 15.0}  # EasyRL4Rec training logs, steps/s
TARGET = {"dqn": 1000.0, "drr": 300.0, "ddpg": 300.0}
#: ML-100K's size: 943 users, 1682 items, ~100,000 ratings
ML100K_SYNTHETIC = {"n_users": 943, "n_items": 1682, "density": 0.063, "seed": 0}


def measure(name: str, scenario: Scenario, n_envs: int = 32, steps: int = 20_000, **agent_kwargs) -> dict[str, float]:
    """Environment steps per second of ``agents.make(name, ...).learn(steps)`` after a warm-up.

    :param name: a learning agent.
    :param scenario: the scenario to train on (its training users).
    :param n_envs: rows of the batched environment.
    :param steps: timed transitions.
    :param agent_kwargs: passed to ``agents.make``.
    """
    env = RecommendationVectorEnv(n_envs, scenario, action_mode=agents.spec(name).action_mode)
    model = agents.make(name, env, encoder="drr-ave" if name != "deers" else None, seed=0, **agent_kwargs)
    model.learn(int(getattr(model, "learning_starts", 0)) + 4 * n_envs)
    start = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    seconds = time.perf_counter() - start
    gradient_steps = int(getattr(model, "gradient_steps", 0))
    return {"env_steps_per_s": steps / seconds, "seconds": seconds,
            "grad_steps_per_s": gradient_steps * steps / n_envs / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k", choices=["ml-100k", "synthetic"])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--steps", type=int, default=20_000, help="timed environment steps per agent")
    parser.add_argument("--n-envs", type=int, default=32, help="users simulated in parallel")
    parser.add_argument("--agents", nargs="*", default=["dqn", "drr"])
    args = parser.parse_args()
    kwargs = ML100K_SYNTHETIC if args.dataset == "synthetic" else {}
    scenario = make_scenario(args.dataset, "pmf", data_dir=args.data_dir, dataset_kwargs=kwargs)
    print(f"{scenario.log!r}; {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f}")
    for name in args.agents:
        r = measure(name, scenario, n_envs=args.n_envs, steps=args.steps)
        sps = r["env_steps_per_s"]
        published = PUBLISHED_GPU.get(name)
        print(
            f"{name:6s} n_envs={args.n_envs}: {sps:8,.0f} env steps/s ({r['grad_steps_per_s']:,.0f} gradient steps/s) "
            f"over {args.steps:,} steps"
            + (f"; {sps / published:.0f}x the published GPU figure ({published:.0f}/s), target >= {TARGET[name]:,.0f}"
               if published else ""),
            flush=True,
        )


if __name__ == "__main__":
    main()
