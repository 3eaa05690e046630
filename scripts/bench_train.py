"""Training speed: environment steps per second, gradient updates per second against a bare-PyTorch ceiling,
and time-to-quality, of the learning agents with the DRR-ave state.

    python scripts/bench_train.py [--dataset ml-100k|synthetic] [--agents dqn drr] [--n-envs 32] [--steps 20000]
    python scripts/bench_train.py --time-to-quality [--agents dqn drr dqn-prior] [--max-steps 100000]

The best published RL-recommender library reports about 15 steps/s for DDPG and
54 steps/s for DQN on a GPU (EasyRL4Rec's logs on ML-1M); recgym's targets on
2 CPU cores are 20x that: >= 300 steps/s (DDPG/DRR) and >= 1,000 steps/s (DQN).
Timing starts after a warm-up that fills the replay buffer past
``learning_starts``, so it measures steady-state training: acting, stepping the
simulated users, and the gradient updates at each agent's default replay ratio.
``--dataset synthetic`` uses a synthetic log of ML-100K's size when the real
files are not at hand.

**Updates per second against a ceiling.** The agent's own update loop
(``model.train``: replay sampling, the Dict observations, the loss, the
optimiser) is timed on its own, beside a *bare-PyTorch ceiling* measured in the
same run: the same networks (deep copies of the agent's), the same batch size,
loss and Adam settings, fed one batch of tensors already in memory, with no
replay buffer and no framework around the loop (CleanRL-style). The ratio says
how much the framework costs per update.

**Time-to-quality** (``--time-to-quality``) trains each agent with its
defaults on recgym/ML100K-PMF-v0's training users through ``recgym train``
(the replay ratio and updates used for results), evaluates online on the
test users every ``--eval-every`` steps, and reports the training wall-clock
(evaluation excluded) until the test reward first reaches 95% of greedy-pmf's.
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch as th
from torch.nn import functional as F

import agents
from recgym.envs import RecommendationVectorEnv
from recgym.scenario import Scenario, make_scenario

PUBLISHED_GPU = {"dqn": 54.0, "drr": 15.0, "ddpg": 15.0}  # EasyRL4Rec training logs, steps/s
TARGET = {"dqn": 1000.0, "drr": 300.0, "ddpg": 300.0}
#: time-to-quality rows beyond the agents' names: DQN whose Q-function starts from greedy-pmf's own fold-in rating
#: (agents/dqn.py, q_head="prior"); it starts at greedy-pmf's policy, so its row says whether training keeps it there
#: (with the learning rate scripts/long_term.py gives it)
QUALITY_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "dqn-prior": ("dqn", {"policy_kwargs": {"q_head": "prior"}, "learning_rate": 3e-4})}
#: where time-to-quality is measured (the issue's: ML-100K's PMF users, stateless, so greedy-pmf is the bar)
QUALITY_ENV = "recgym/ML100K-PMF-v0"
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
            "grad_steps_per_s": gradient_steps * steps / n_envs / seconds, "model": model}


def _batch(model: Any, batch_size: int) -> Any:
    return model.replay_buffer.sample(batch_size, env=model._vec_normalize_env)


def bare_dqn_updates_per_s(model: Any, seconds: float = 10.0) -> float:
    """Masked double-DQN updates per second on copies of ``model``'s networks, one batch held in memory."""
    from agents.common import mask_consumed

    q_net, q_target = copy.deepcopy(model.q_net), copy.deepcopy(model.q_net_target)
    params = [p for p in q_net.parameters() if p.requires_grad]
    optimizer = th.optim.Adam(params, lr=model.learning_rate)
    data = _batch(model, model.batch_size)
    obs, next_obs, actions = data.observations, data.next_observations, data.actions.long()
    gamma, clip = model.gamma, model.max_grad_norm

    def update() -> None:
        with th.no_grad():
            best = mask_consumed(q_net(next_obs), next_obs["consumed"]).argmax(dim=1, keepdim=True)
            next_q = mask_consumed(q_target(next_obs), next_obs["consumed"]).gather(1, best)
            target = data.rewards + (1 - data.dones) * gamma * next_q
        loss = F.smooth_l1_loss(q_net.q_values(obs, actions), target)
        optimizer.zero_grad()
        loss.backward()
        th.nn.utils.clip_grad_norm_(params, clip)
        optimizer.step()

    return _rate(update, seconds)


def bare_ddpg_updates_per_s(model: Any, seconds: float = 10.0) -> float:
    """DRR/DDPG updates per second (critic, actor, Polyak) on copies of ``model``'s networks."""
    actor, critic = copy.deepcopy(model.actor), copy.deepcopy(model.critic)
    actor_target, critic_target = copy.deepcopy(model.actor_target), copy.deepcopy(model.critic_target)
    critic_opt = th.optim.Adam([p for p in critic.parameters() if p.requires_grad], lr=model.learning_rate)
    actor_opt = th.optim.Adam([p for p in actor.parameters() if p.requires_grad],
                              lr=getattr(model, "actor_learning_rate", model.learning_rate))
    pairs = [(p, q) for m, t in ((actor, actor_target), (critic, critic_target))
             for p, q in zip(m.parameters(), t.parameters()) if p.requires_grad]
    data = _batch(model, model.batch_size)
    gamma, tau, penalty = model.gamma, model.tau, float(getattr(model, "action_penalty", 0.0))
    q_network = critic.q_networks[0]

    def update() -> None:
        with th.no_grad():
            next_q = critic_target(data.next_observations, actor_target(data.next_observations))[0]
            target = data.rewards + (1 - data.dones) * gamma * next_q
        state = critic.extract_features(data.observations, critic.features_extractor)
        critic_loss = F.mse_loss(q_network(th.cat([state, data.actions], dim=1)), target)
        critic_opt.zero_grad()
        critic_loss.backward()
        critic_opt.step()
        pre_tanh = actor.mu[:-1](actor.extract_features(data.observations, actor.features_extractor))
        actor_loss = -q_network(th.cat([state.detach(), th.tanh(pre_tanh)], dim=1)).mean()
        actor_loss = actor_loss + penalty * (pre_tanh**2).mean()
        actor_opt.zero_grad()
        actor_loss.backward()
        actor_opt.step()
        with th.no_grad():
            for p, q in pairs:
                q.mul_(1 - tau).add_(p, alpha=tau)

    return _rate(update, seconds)


def agent_updates_per_s(model: Any, seconds: float = 10.0) -> float:
    """Updates per second of the agent's own ``train`` (replay sampling included), environment excluded."""
    return _rate(lambda: model.train(gradient_steps=1, batch_size=model.batch_size), seconds)


def _rate(step: Any, seconds: float) -> float:
    for _ in range(5):  # warm-up (allocator, lazy initialisation)
        step()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        n += 1
    return n / (time.perf_counter() - start)


BARE = {"dqn": bare_dqn_updates_per_s, "drr": bare_ddpg_updates_per_s, "ddpg": bare_ddpg_updates_per_s}


def time_to_quality(agent: str, max_steps: int, eval_every: int, greedy: float, data_dir: str | None,
                    seed: int = 0, agent_kwargs: dict[str, Any] | None = None, stop: bool = True) -> dict[str, Any]:
    """Train ``agent`` (DRR-ave state) until its test reward reaches 95% of ``greedy`` or ``max_steps``.

    With ``stop=False`` it trains all ``max_steps`` (for a policy that starts at the bar: does training keep it
    there?) and the result also holds the whole curve.
    """
    from recgym.experiments.config import make_config
    from recgym.experiments.train import train

    env_kwargs = {"data_dir": data_dir} if data_dir else {}
    config = make_config(env=QUALITY_ENV, agent=agent, encoder="drr-ave", agent_kwargs=dict(agent_kwargs or {}),
                         steps=max_steps, seed=seed,
                         eval_every=eval_every, checkpoint_every=max_steps, env_kwargs=env_kwargs,
                         stop_at_reward=0.95 * greedy if stop else None)
    with tempfile.TemporaryDirectory() as tmp:
        result = train(config, Path(tmp) / "run", progress=False)
    reached = [p for p in result["curve"] if p["avg_reward_per_step"] >= 0.95 * greedy]
    best = max(result["curve"], key=lambda p: p["avg_reward_per_step"])
    return {"reached": bool(reached), "steps": reached[0]["step"] if reached else None,
            "minutes": reached[0]["train_seconds"] / 60 if reached else None,
            "best_reward": best["avg_reward_per_step"], "best_step": best["step"],
            "trained_minutes": result["curve"][-1]["train_seconds"] / 60,
            "gradient_updates": result["gradient_updates"],
            "curve": [(p["step"], p["avg_reward_per_step"]) for p in result["curve"]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k", choices=["ml-100k", "synthetic"])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--steps", type=int, default=20_000, help="timed environment steps per agent")
    parser.add_argument("--n-envs", type=int, default=32, help="users simulated in parallel")
    parser.add_argument("--agents", nargs="*", default=["dqn", "drr"],
                        help="agents to time; with --time-to-quality also dqn-prior (DQN with q_head=prior)")
    parser.add_argument("--ceiling-seconds", type=float, default=10.0, help="seconds each update rate is timed")
    parser.add_argument("--time-to-quality", action="store_true",
                        help="minutes until the test reward reaches 95%% of greedy-pmf's on ML100K-PMF-v0")
    parser.add_argument("--max-steps", type=int, default=100_000, help="time-to-quality: give up after this many steps")
    parser.add_argument("--eval-every", type=int, default=2_000, help="time-to-quality: steps between evaluations")
    args = parser.parse_args()
    if args.time_to_quality:
        return quality_main(args)
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
        model = r["model"]
        if name in BARE:
            own = agent_updates_per_s(model, args.ceiling_seconds)
            bare = BARE[name](model, args.ceiling_seconds)
            print(f"{name:6s} updates/s: agent's train() {own:,.0f}, bare-PyTorch ceiling {bare:,.0f}, "
                  f"ratio {own / bare:.2f} (batch {model.batch_size})", flush=True)


def quality_main(args: argparse.Namespace) -> None:
    """Time-to-quality of each agent on ML100K-PMF-v0's test users."""
    from recgym.evaluation.online import evaluation_env, run_episodes
    from recgym.experiments.environments import make_run_setup

    # the registered environment's episodes, as the agents' training and their evaluations use
    setup = make_run_setup(QUALITY_ENV, {"data_dir": args.data_dir} if args.data_dir else {}, "discrete")
    env = evaluation_env(setup.scenario, setup.config)
    greedy = run_episodes(agents.make("greedy-pmf", env, scenario=setup.scenario), env,
                          seed=0).avg_reward_per_step
    print(f"greedy-pmf on the test users: {greedy:.4f} reward/step; target 95% = {0.95 * greedy:.4f}; "
          f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f}", flush=True)
    rows = [(name, *QUALITY_VARIANTS.get(name, (name, {}))) for name in args.agents]
    for name, agent, kwargs in rows:
        if name in QUALITY_VARIANTS:  # starts at greedy-pmf's policy: train the whole budget and follow it
            r = time_to_quality(agent, args.max_steps, args.eval_every, greedy, args.data_dir, agent_kwargs=kwargs,
                                stop=False)
            after = [reward for step, reward in r["curve"] if step > 0]
            print(f"{name:6s} starts at {r['curve'][0][1]:.4f} ({r['curve'][0][1] / greedy:.2f} x greedy-pmf); over "
                  f"{args.max_steps:,} steps of training ({r['trained_minutes']:.1f} minutes, "
                  f"{r['gradient_updates']:,} updates) its test reward stays in {min(after):.4f}-{max(after):.4f} "
                  f"({min(after) / greedy:.2f}-{max(after) / greedy:.2f} x greedy-pmf), {after[-1]:.4f} at the end "
                  f"({after[-1] / greedy:.2f} x)", flush=True)
            continue
        r = time_to_quality(agent, args.max_steps, args.eval_every, greedy, args.data_dir, agent_kwargs=kwargs)
        if r["reached"]:
            print(f"{name:6s} reached 95% of greedy-pmf after {r['steps']:,} steps, {r['minutes']:.1f} minutes "
                  f"of training", flush=True)
        else:
            print(f"{name:6s} did not reach 95% of greedy-pmf in {args.max_steps:,} steps "
                  f"({r['trained_minutes']:.1f} minutes, {r['gradient_updates']:,} updates); best "
                  f"{r['best_reward']:.4f} at step {r['best_step']:,} ({r['best_reward'] / greedy:.2f} x greedy-pmf)",
                  flush=True)


if __name__ == "__main__":
    main()
