"""The gradient updates an SB3 algorithm has taken, counted through its logger (no private attribute).

Every SB3 algorithm, and recgym's (``MaskedDQN``, ``DEERS``, ``DRR``), records its cumulative count
under ``train/n_updates`` at the end of each ``train`` call. The logger forgets its values when it
dumps them (every few episodes), so :class:`GradientUpdateCounter` reads the value at the start of
each rollout, which comes right after a ``train`` call, and when learning ends.
"""

from __future__ import annotations

from stable_baselines3.common.callbacks import BaseCallback

#: The logger key SB3's algorithms record their cumulative gradient updates under.
N_UPDATES_KEY = "train/n_updates"


class GradientUpdateCounter(BaseCallback):
    """Callback whose :attr:`count` is the gradient updates the model has taken, read from its logger.

    >>> counter = GradientUpdateCounter()
    >>> model.learn(1_000, callback=counter)  # doctest: +SKIP
    >>> counter.count  # doctest: +SKIP
    117

    :param start: the count before this ``learn`` call (a resumed run's, from its checkpoint); kept
        while the model logs no update (a ``learn`` that never reaches ``learning_starts``).
    """

    def __init__(self, start: int = 0) -> None:
        super().__init__()
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ValueError(f"start must be a whole number >= 0 (the updates taken before), got {start!r}")
        #: Gradient updates taken in all (the model's count, which a loaded model continues).
        self.count = start

    def _read(self) -> None:
        logged = self.logger.name_to_value.get(N_UPDATES_KEY)
        if logged is not None:
            self.count = int(logged)

    def _on_rollout_start(self) -> None:
        self._read()

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        self._read()
