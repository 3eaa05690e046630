"""Simulated users fitted from rating logs."""

from simulators.base import N_BEHAVIORS, Behavior, Feedback, NotFittedError, UserSimulator

__all__ = ["N_BEHAVIORS", "Behavior", "Feedback", "NotFittedError", "UserSimulator"]
