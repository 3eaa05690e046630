"""How often the SB3 agents take gradient steps (``replay_schedule``) and the Adam they take them with."""

from __future__ import annotations

from typing import Any

import torch as th


def replay_schedule(env: Any, replay_ratio: float) -> dict[str, int]:
    """``train_freq`` and ``gradient_steps`` that keep ``replay_ratio`` gradient steps per transition.

    SB3 counts ``train_freq`` in ``env.step`` calls, each ``n_envs`` transitions:
    with many envs, several gradient steps per call; with few, one every few calls.

    :param env: the training environment (a ``VecEnv`` counts ``num_envs`` transitions per call).
    :param replay_ratio: gradient steps per transition (> 0).
    """
    per_call = int(getattr(env, "num_envs", 1)) * float(replay_ratio)
    if per_call >= 1:
        return {"train_freq": 1, "gradient_steps": round(per_call)}
    return {"train_freq": round(1 / per_call), "gradient_steps": 1}


# probed once per process: whether this torch has the fused Adam kernel on CPU
_FUSED_ADAM: bool | None = None


def optimizer_kwargs() -> dict[str, Any]:
    """Adam arguments for the small networks here: the fused kernel where torch has it on CPU.

    With one-to-a-few-hundred-thousand parameters the per-tensor Python loop of
    the default Adam costs more than the arithmetic (about 5x at ML-100K size).
    """
    global _FUSED_ADAM
    if _FUSED_ADAM is None:
        try:
            th.optim.Adam([th.zeros(1, requires_grad=True)], fused=True)
            _FUSED_ADAM = True
        except (RuntimeError, TypeError, ValueError):
            _FUSED_ADAM = False
    return {"fused": True} if _FUSED_ADAM else {}
