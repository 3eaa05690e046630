"""The replay an off-policy agent samples from, chosen from its arguments: uniform, prioritized or n-step.

:class:`~agents.dqn.MaskedDQN` (and DEERS, built on it) and :class:`~agents.drr.DRR` take the same
replay arguments (``prioritized_replay``, ``per_alpha``, ``per_beta0``, ``per_eps``, ``n_steps``) and
build their SB3 algorithm the same way around them: the buffer class is chosen before SB3 sees the
arguments (SB3 refuses n-step returns for Dict observations), and the n-step buffer's ``gamma`` is
the algorithm's, known only once SB3 has read it.
"""

from __future__ import annotations

from typing import Any, Callable

from agents.nstep import n_step_buffer_kwargs, take_n_steps
from agents.per import use_prioritized_replay


def init_with_replay(
    algorithm: Any,
    base_init: Callable[..., None],
    policy: Any,
    env: Any,
    algorithm_kwargs: dict[str, Any],
    *,
    prioritized_replay: bool,
    per_alpha: float,
    per_beta0: float,
    per_eps: float,
) -> None:
    """Run the SB3 constructor ``base_init`` of ``algorithm`` with the replay its arguments ask for.

    Sets ``algorithm.prioritized_replay``, ``algorithm.per_beta0`` (the start of β's annealing) and
    ``algorithm.n_step_returns``; builds the model unless ``_init_setup_model=False`` is among the
    arguments (``load`` passes it).

    :param algorithm: the algorithm being built (``self`` of its ``__init__``).
    :param base_init: the SB3 class's ``__init__`` bound to it (``super().__init__``).
    :param policy: the policy argument for SB3.
    :param env: the environment argument for SB3.
    :param algorithm_kwargs: the other SB3 keyword arguments, ``n_steps`` among them; consumed.
    :param prioritized_replay: sample with proportional PER (not combined with ``n_steps > 1``).
    :param per_alpha: α of PER.
    :param per_beta0: initial β of PER.
    :param per_eps: ε of PER.
    :raises ValueError: ``n_steps`` not an integer >= 1, or ``n_steps > 1`` with prioritized replay.
    """
    algorithm.prioritized_replay = bool(prioritized_replay)
    algorithm.per_beta0 = float(per_beta0)
    algorithm.n_step_returns = take_n_steps(algorithm_kwargs, algorithm.prioritized_replay)
    if algorithm.prioritized_replay:
        use_prioritized_replay(algorithm_kwargs, per_alpha, per_beta0, per_eps)
    init_setup = algorithm_kwargs.pop("_init_setup_model", True)
    base_init(policy, env, _init_setup_model=False, **algorithm_kwargs)
    algorithm.replay_buffer_kwargs = n_step_buffer_kwargs(
        algorithm.n_step_returns, algorithm.gamma, algorithm.replay_buffer_kwargs
    )
    if init_setup:
        algorithm._setup_model()
