"""Gymnasium environments of recgym."""

from recgym.envs.spaces import ObservationLayout

__all__ = ["ObservationLayout"]
