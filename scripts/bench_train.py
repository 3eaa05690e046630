"""Training speed: environment steps per second of DQN and DDPG (DRR) with the DRR-ave state.

    python scripts/bench_train.py [--data-dir DIR] [--steps 20000] [--n-envs 32]

The best published RL-recommender library reports about 15 steps/s for DDPG and
54 steps/s for DQN on a GPU (EasyRL4Rec's logs on ML-1M); recgym's targets on
2 CPU cores are 20x that: >= 300 steps/s (DDPG) and >= 1,000 steps/s (DQN).
The timing starts after a warm-up that fills the replay buffer past
``learning_starts``, so it measures steady-state training (acting, stepping the
simulated users, and gradient updates).
"""

from __future__ import annotations

import argparse
import time

import torch

import agents
from recgym.envs import RecommendationVectorEnv, SB3VecEnvAdapter, build_world

PUBLISHED_GPU = {"dqn": 54.0, "drr": 15.0}  # EasyRL4Rec training logs, steps/s
TARGET = {"dqn": 1000.0, "drr": 300.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--steps", type=int, default=20_000, help="timed environment steps per agent")
    parser.add_argument("--n-envs", type=int, default=None, help="parallel users (default: the agent's default)")
    parser.add_argument("--agents", nargs="*", default=["dqn", "drr"])
    args = parser.parse_args()
    world = build_world(args.dataset, "pmf", data_dir=args.data_dir)
    print(f"{args.dataset}: {world.log.n_users} users x {world.log.n_items} items; torch threads {torch.get_num_threads()}")
    for name in args.agents:
        spec = agents.spec(name)
        n_envs = args.n_envs or 32
        env = SB3VecEnvAdapter(RecommendationVectorEnv(n_envs, world=world, action_mode=spec.action_mode))
        model = agents.make(name, env, encoder="drr-ave", seed=0)
        warmup = int(getattr(model, "learning_starts", 0)) + 4 * n_envs
        model.learn(warmup)
        start = time.perf_counter()
        model.learn(args.steps, reset_num_timesteps=False)
        seconds = time.perf_counter() - start
        sps = args.steps / seconds
        print(
            f"{name:5s} (drr-ave, n_envs={n_envs}): {sps:8,.0f} env steps/s over {args.steps:,} steps "
            f"({seconds:.1f} s); {sps / PUBLISHED_GPU[name]:.0f}x the published GPU figure "
            f"({PUBLISHED_GPU[name]:.0f} steps/s); target >= {TARGET[name]:,.0f}"
        )


if __name__ == "__main__":
    main()
