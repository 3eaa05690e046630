"""Training throughput of the learning agents: ``python -m agents.bench [--agents dqn,drr] [--n-envs 32]``.

Builds an ML-100K-sized world (943 users x 1682 items, ~100k ratings; the
synthetic log by default, the real ML-100K with ``--dataset ml-100k`` when it
is staged), then times ``learn`` after a warm-up that fills the replay buffer
past ``learning_starts``. Prints environment steps (transitions) per second
and gradient steps per second for each agent, with the agents' default
settings (one torch thread, replay ratio, batch 64).
"""

from __future__ import annotations

import argparse
import os
import time

import agents
from recgym.envs.vector import RecommendationVectorEnv
from recgym.envs.world import World, build_world

#: ML-100K's size: 943 users, 1682 items, 100,000 ratings (density 0.063).
ML100K_SYNTHETIC = {"n_users": 943, "n_items": 1682, "density": 0.063, "seed": 0}


def ml100k_sized_world(dataset: str = "synthetic") -> World:
    """The world of the benchmark: ML-100K itself or a synthetic log of its size, with PMF (d = 50)."""
    kwargs = ML100K_SYNTHETIC if dataset == "synthetic" else {}
    return build_world(dataset, "pmf", dataset_kwargs=kwargs)


def measure(name: str, world: World, n_envs: int = 32, steps: int = 20_000, warmup: int = 2_000,
            **agent_kwargs) -> dict[str, float]:
    """Environment steps per second of ``agents.make(name, ...).learn(steps)`` after ``warmup`` steps.

    :param name: a learning agent.
    :param world: the world to train on (its training users).
    :param n_envs: rows of the batched environment.
    :param steps: timed transitions.
    :param warmup: untimed transitions first (at least ``learning_starts``).
    :param agent_kwargs: passed to ``agents.make``.
    """
    env = RecommendationVectorEnv(n_envs, world=world, action_mode=agents.spec(name).action_mode)
    model = agents.make(name, env, seed=0, **agent_kwargs)
    model.learn(warmup)
    start = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    seconds = time.perf_counter() - start
    gradient_steps = int(getattr(model, "gradient_steps", 0))
    return {
        "env_steps_per_s": steps / seconds,
        "grad_steps_per_s": gradient_steps * steps / n_envs / seconds,
        "gradient_steps": gradient_steps,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", default="dqn,drr", help="comma-separated learning agents")
    parser.add_argument("--n-envs", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--dataset", default="synthetic", choices=["synthetic", "ml-100k"])
    args = parser.parse_args(argv)
    world = ml100k_sized_world(args.dataset)
    print(f"world: {world.log!r}; cpus: {os.cpu_count()}; load average: {os.getloadavg()[0]:.2f}")
    for name in args.agents.split(","):
        result = measure(name, world, n_envs=args.n_envs, steps=args.steps)
        print(
            f"{name:8s} n_envs={args.n_envs} gradient_steps={result['gradient_steps']}: "
            f"{result['env_steps_per_s']:.0f} env steps/s, {result['grad_steps_per_s']:.0f} gradient steps/s",
            flush=True,
        )


if __name__ == "__main__":
    main()
