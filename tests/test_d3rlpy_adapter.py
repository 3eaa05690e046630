"""A d3rlpy policy trained from a recgym transition log, scored by recgym's online protocol (recgym.offline.d3rlpy_adapter)."""

from __future__ import annotations

import numpy as np
import pytest

from recgym.evaluation import evaluate_online
from recgym.evaluation.transitions import SoftmaxProbabilities, available_items, record_transitions
from recgym.offline import OfflineDataset
from tests.helpers import AvailabilityWatch, greedy_pmf_for, logged_data_run

# CI installs the `offline` extra (Makefile's EXTRAS in .ci/run), so this runs there; without d3rlpy it says so
d3rlpy = pytest.importorskip("d3rlpy", reason="d3rlpy is not installed: `pip install 'recgym[offline]'`")

from recgym.offline.d3rlpy_adapter import D3RLPY_ALGORITHMS, to_mdp_dataset, train_d3rlpy  # noqa: E402


@pytest.fixture(scope="module")
def run():
    return logged_data_run()


@pytest.fixture(scope="module")
def train_log(run):
    return record_transitions(SoftmaxProbabilities(greedy_pmf_for(run), 0.5), run.scenario, run.config,
                              users="train", seed=3)


@pytest.fixture(scope="module")
def dataset(run, train_log):
    return OfflineDataset.from_log(train_log, run.scenario, run.config)


def test_the_mdp_dataset_holds_the_logs_episodes_and_every_item_as_an_action(run, train_log, dataset):
    mdp = to_mdp_dataset(dataset)
    assert mdp.dataset_info.action_size == run.scenario.n_items
    assert len(mdp.episodes) == train_log.n_episodes
    assert sum(e.size() for e in mdp.episodes) == len(train_log)
    assert np.allclose(sum(float(e.rewards.sum()) for e in mdp.episodes), train_log.rewards.sum())




@pytest.mark.parametrize("algorithm", D3RLPY_ALGORITHMS)
def test_a_d3rlpy_policy_trained_from_a_log_is_scored_by_the_online_protocol_on_test_users(algorithm, run, dataset):
    policy = train_d3rlpy(algorithm, dataset, run.scenario, run.config, steps=200, seed=0)
    watched = AvailabilityWatch(policy)
    result = evaluate_online(watched, run.scenario, run.config, users="test", seed=0)
    assert result.episodes == run.scenario.users("test").size
    assert watched.choices >= result.episodes and watched.unavailable == 0
    assert np.isfinite(result.avg_reward_per_episode)


def test_where_d3rlpys_greedy_item_is_consumed_the_best_available_item_by_q_value_stands_in(run, dataset, train_log):
    policy = train_d3rlpy("cql", dataset, run.scenario, run.config, steps=20, seed=0)
    obs = {k: v[:8] for k, v in train_log.observations.items()}
    masks = np.asarray(train_log.action_masks[:8], dtype=bool)
    x = policy.features.encode(obs).astype(np.float32)
    greedy = policy.algo.predict(x)
    masks[np.arange(8), greedy] = False  # forbid d3rlpy's own choice
    actions, _ = policy.predict(obs, action_masks=masks)
    available = available_items(obs, masks)
    for row in range(8):
        items = np.flatnonzero(available[row])
        q = policy.algo.predict_value(np.repeat(x[row:row + 1], items.size, axis=0), items)
        assert actions[row] == items[np.argmax(q)] != greedy[row]
    # the full Q-vectors are d3rlpy's own predict_value, item by item
    items = np.arange(run.scenario.n_items)
    assert np.allclose(policy.q_values(x[:1])[0], policy.algo.predict_value(np.repeat(x[:1], items.size, axis=0), items),
                       atol=1e-5)


def test_training_is_seeded_and_leaves_the_callers_global_generators_as_they_were(run, dataset):
    import random

    import torch

    random.seed(5), np.random.seed(5), torch.manual_seed(5)
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(5), np.random.seed(5), torch.manual_seed(5)
    first = train_d3rlpy("cql", dataset, run.scenario, run.config, steps=10, seed=2)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    second = train_d3rlpy("cql", dataset, run.scenario, run.config, steps=10, seed=2)
    x = dataset.features[:20]
    assert np.array_equal(first.q_values(x), second.q_values(x))


def test_bad_input_is_refused_with_the_fix(run, dataset):
    with pytest.raises(ValueError, match="choose one of cql, bcq"):
        train_d3rlpy("bc", dataset, run.scenario, run.config, steps=5)
    with pytest.raises(ValueError, match="steps must be"):
        train_d3rlpy("cql", dataset, run.scenario, run.config, steps=0)


def test_without_d3rlpy_the_error_names_the_extra(monkeypatch):
    import sys

    from recgym.offline import d3rlpy_adapter

    monkeypatch.setitem(sys.modules, "d3rlpy", None)  # what an environment without d3rlpy's import gives
    with pytest.raises(ImportError, match=r"pip install 'recgym\[offline\]'"):
        d3rlpy_adapter.import_d3rlpy()
