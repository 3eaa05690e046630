"""Environment speed: single-env steps/s, batched user-steps/s, peak memory, CartPole yardstick.

Runs on one core (BLAS threads pinned to 1) so the figures compare across machines:

    python scripts/bench_env.py [--data-dir DIR] [--env recgym/ML100K-PMF-v0]

Targets (issue 3): a single recgym step costs at most 3x a CartPole-v1 step; the
batched env with discrete actions reaches >= 1,000,000 user-steps/s at B = 4096;
with embedding actions a batched step costs at most 1.5x the bare
``scores = actions @ item_embeddings.T``, mask, argmax on the same arrays.
"""

from __future__ import annotations

import argparse
import resource
import time

import gymnasium as gym
import numpy as np

import recgym  # noqa: F401
from recgym.threads import WORK_THREADS, limit_blas_threads


def time_single(env: gym.Env, actions: list, repeat: int = 3) -> float:
    """Best-of-``repeat`` steps per second of a single env over ``actions`` (resets included)."""
    best = 0.0
    for r in range(repeat):
        env.reset(seed=r)
        start = time.perf_counter()
        for a in actions:
            _, _, term, trunc, _ = env.step(a)
            if term or trunc:
                env.reset()
        best = max(best, len(actions) / (time.perf_counter() - start))
    return best


def time_batched(venv, actions: list, repeat: int = 3) -> float:
    """Best-of-``repeat`` seconds per batched step."""
    best = np.inf
    for r in range(repeat):
        venv.reset(seed=r)
        start = time.perf_counter()
        for a in actions:
            venv.step(a)
        best = min(best, (time.perf_counter() - start) / len(actions))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="recgym/ML100K-PMF-v0")
    parser.add_argument("--data-dir", default=None, help="local data directory (default: RECGYM_DATA_DIR)")
    parser.add_argument("--steps", type=int, default=20000, help="single-env steps per timing")
    args = parser.parse_args()
    limit_blas_threads(WORK_THREADS)  # recgym's thread policy, as under `recgym train`
    kwargs = {"data_dir": args.data_dir} if args.data_dir else {}
    rng = np.random.default_rng(0)

    cart = gym.make("CartPole-v1")
    cart_actions = [int(a) for a in rng.integers(0, 2, size=args.steps)]
    cart_sps = time_single(cart, cart_actions)

    start = time.perf_counter()
    env = gym.make(args.env, **kwargs)
    build_s = time.perf_counter() - start
    n_items = env.action_space.n
    actions = [int(a) for a in rng.integers(0, n_items, size=args.steps)]
    rec_sps = time_single(env, actions)
    emb_env = gym.make(args.env, action_mode="embedding", **kwargs)
    d = emb_env.action_space.shape[0]
    emb_actions = list(rng.uniform(-1, 1, size=(args.steps // 4, d)).astype(np.float32))
    rec_emb_sps = time_single(emb_env, emb_actions)

    print(f"environment: {args.env} ({n_items} items; built in {build_s:.1f} s)")
    print(f"CartPole-v1 single env:       {cart_sps:12,.0f} steps/s  ({1e6 / cart_sps:6.1f} us/step)")
    print(f"recgym single env (discrete): {rec_sps:12,.0f} steps/s  ({1e6 / rec_sps:6.1f} us/step)  "
          f"= {cart_sps / rec_sps:.2f}x a CartPole step (target <= 3x)")
    print(f"recgym single env (embedding):{rec_emb_sps:12,.0f} steps/s  ({1e6 / rec_emb_sps:6.1f} us/step)")

    print("\nbatched env, discrete actions (user-steps/s):")
    for b in (1, 64, 1024, 4096):
        venv = gym.make_vec(args.env, num_envs=b, vectorization_mode="vector_entry_point", **kwargs)
        n = max(20, min(2000, 200_000 // b))
        acts = [rng.integers(0, n_items, size=b) for _ in range(n)]
        per_step = time_batched(venv, acts)
        flag = "  (target >= 1,000,000)" if b == 4096 else ""
        print(f"  B={b:5d}: {b / per_step:14,.0f} user-steps/s  ({per_step * 1e3:7.3f} ms/step){flag}")

    b = 4096
    venv = gym.make_vec(args.env, num_envs=b, vectorization_mode="vector_entry_point", action_mode="embedding", **kwargs)
    acts = [rng.uniform(-1, 1, size=(b, d)).astype(np.float32) for _ in range(20)]
    env_step = time_batched(venv, acts)
    item_emb = venv.scenario.action_item_vectors  # what embedding actions are scored against
    blocked = np.zeros((b, n_items), dtype=bool)
    blocked[:, :25] = True
    bare = np.inf
    for _ in range(3):
        start = time.perf_counter()
        for a in acts:
            scores = a @ item_emb.T
            np.copyto(scores, -np.inf, where=blocked)
            scores.argmax(axis=1)
        bare = min(bare, (time.perf_counter() - start) / len(acts))
    print(f"\nbatched env, embedding actions, B={b}: {b / env_step:,.0f} user-steps/s, {env_step * 1e3:.2f} ms/step; "
          f"bare matmul+mask+argmax {bare * 1e3:.2f} ms -> {env_step / bare:.2f}x (target <= 1.5x)")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS): {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
