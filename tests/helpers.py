"""Small builders shared by the test modules."""

from __future__ import annotations

import numpy as np

from recgym.data.rating_log import RatingLog
from recgym.scenario import Scenario
from simulators.base import UserSimulator
from simulators.pmf import PMFSimulator


def scenario_from_parts(
    log: RatingLog, simulator: UserSimulator, train_users: np.ndarray, test_users: np.ndarray,
    embedding_fit: str = "train", dim: int = 16,
) -> Scenario:
    """A scenario from a log, a fitted simulator and a user split, with its embedding model fitted here."""
    rating_model = simulator if isinstance(simulator, PMFSimulator) else PMFSimulator(dim=dim).fit(log)
    if embedding_fit == "all":
        embedding = rating_model
    else:
        df = log.interactions
        train_log = log.with_interactions(df[np.isin(df["user"].to_numpy(), train_users)])
        embedding = PMFSimulator(dim=rating_model.dim, reg=rating_model.reg).fit(train_log)
    return Scenario(log, np.sort(train_users), np.sort(test_users), simulator, rating_model, embedding, embedding_fit)
