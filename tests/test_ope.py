"""Off-policy estimators (recgym.evaluation.ope), transition logs and their Minari export (``recgym log``)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from recgym.evaluation.ope import (
    DecisionArrays,
    RatingRewardModel,
    decision_arrays,
    estimate,
    estimate_all,
)
from recgym.evaluation.transitions import (
    EpsilonMixture,
    GreedyProbabilities,
    SoftmaxProbabilities,
    UniformProbabilities,
    record_transitions,
)
from tests.helpers import greedy_pmf_for, logged_data_run


def arrays(episode, step, rewards, mu, pi, q=None, v=None, x=None, m=None) -> DecisionArrays:
    as_array = (lambda x: None if x is None else np.asarray(x, dtype=np.float64))
    return DecisionArrays(np.asarray(episode), np.asarray(step), as_array(rewards), as_array(mu), as_array(pi),
                          as_array(q), as_array(v), as_array(x), as_array(m))


# -- hand-computed values ---------------------------------------------------------------------------
# a bandit log: four one-step episodes; weights pi/mu = 2, 0, 1, 2
BANDIT = arrays([0, 1, 2, 3], [0, 0, 0, 0], rewards=[1, 2, 0, 4], mu=[0.5, 0.25, 0.5, 0.25], pi=[1, 0, 0.5, 0.5],
                q=[1, 1, 1, 3], v=[1.5, 1, 0.5, 2])


@pytest.mark.parametrize("estimator,expected", [
    ("pdis", (2 * 1 + 0 * 2 + 1 * 0 + 2 * 4) / 4),  # 2.5
    ("wpdis", (2 * 1 + 0 * 2 + 1 * 0 + 2 * 4) / (2 + 0 + 1 + 2)),  # 2.0
    ("dm", (1.5 + 1 + 0.5 + 2) / 4),  # 1.25
    ("dr-myopic", ((2 * 0 + 1.5) + (0 * 1 + 1) + (1 * -1 + 0.5) + (2 * 1 + 2)) / 4),  # 1.5
])
def test_each_estimator_on_a_tiny_bandit_log_gives_the_hand_computed_value(estimator, expected):
    result = estimate(BANDIT, estimator, samples=200)
    assert result.value == pytest.approx(expected)
    assert result.low <= result.value <= result.high and result.episodes == 4


# two episodes, of 2 and 1 steps: ratios (2, 0.5) and (0.5,), so per-decision weights (2, 1) and (0.5,)
SEQUENCE = arrays([0, 0, 1], [0, 1, 0], rewards=[1, 3, 2], mu=[0.25, 0.5, 0.5], pi=[0.5, 0.25, 0.25],
                  q=[1, 2, 1], v=[1, 4, 3])


@pytest.mark.parametrize("estimator,kwargs,expected", [
    ("pdis", {}, ((2 * 1 + 1 * 3) + 0.5 * 2) / 2),  # 3.0
    ("pdis", {"gamma": 0.5}, ((2 * 1 + 0.5 * 1 * 3) + 0.5 * 2) / 2),  # 2.25
    ("pdis", {"max_weight": 1.5}, ((1.5 * 1 + 1 * 3) + 0.5 * 2) / 2),  # clipped: 2.75
    # the ended episode keeps its weight 0.5 (reward 0) in step 1's denominator
    ("wpdis", {}, (2 * 1 + 0.5 * 2) / (2 + 0.5) + (1 * 3 + 0.5 * 0) / (1 + 0.5)),  # 3.2
    ("dm", {}, ((1 + 4) + 3) / 2),  # 4.0
    # one-step DR: w_t (r_t - q_t) + w_{t-1} v_t, with w_{-1} = 1
    ("dr-myopic", {}, ((2 * 0 + 1 * 1) + (1 * (3 - 2) + 2 * 4) + (0.5 * (2 - 1) + 1 * 3)) / 2),  # 6.75
])
def test_per_decision_estimators_on_a_two_step_log_give_the_hand_computed_value(estimator, kwargs, expected):
    assert estimate(SEQUENCE, estimator, samples=0, **kwargs).value == pytest.approx(expected)


def test_dr_without_a_reward_model_signal_is_pdis():
    zero = arrays([0, 0, 1], [0, 1, 0], rewards=[1, 3, 2], mu=[0.25, 0.5, 0.5], pi=[0.5, 0.25, 0.25],
                  q=[0, 0, 0], v=[0, 0, 0])
    assert estimate(zero, "dr-myopic", samples=0).value == pytest.approx(estimate(zero, "pdis", samples=0).value)


def test_dr_equals_fqe_and_dm_in_a_bandit_when_the_reward_model_is_exact_whatever_the_target():
    # one-step episodes, deterministic rewards r = 1 - x + 0.5 x^2, a polynomial of the feature: FQE's Q̂_0 is
    # the reward model, the correction w (r - Q̂) vanishes and w_{-1} = 1, so DR = FQE = DM whatever μ and π
    rng = np.random.default_rng(0)
    n = 50
    coefficients = np.array([1.0, -1.0, 0.5])
    x = rng.normal(size=n)
    r = np.polynomial.polynomial.polyval(x, coefficients)
    moments = np.column_stack([np.ones(n), rng.normal(size=n), rng.uniform(1, 2, n)])  # m_0 = 1
    d = arrays(np.arange(n), np.zeros(n, dtype=int), rewards=r, mu=rng.uniform(0.05, 1, n),
               pi=rng.uniform(0, 1, n), q=r, v=moments @ coefficients, x=x, m=moments)
    dm = estimate(d, "dm", samples=0).value
    assert estimate(d, "fqe", samples=0).value == pytest.approx(dm)
    assert estimate(d, "dr", samples=0).value == pytest.approx(dm)


# a two-step log whose return-to-go a line in the feature x represents exactly (episode 2 leaves after step 0):
# step 1: r = 1 + 2x, so Q̂_1 = 1 + 2x and V̂_1(s) = 1 + 2 m_1(s) = 3, 5, 2, 3 at the step-1 states;
# step 0: y = r + V̂_1(s_1) (r alone for episode 2) = 2, 3, 3, 4, 5 at x = 0, 1, 1, 2, 3, so Q̂_0 = 2 + x and
# V̂_0(s_0) = 2 + m_1(s_0) = 3, 3, 2, 4, 4: FQE's value is their mean, 16 / 5
TWO_STEP = dict(episode=[0, 0, 1, 1, 2, 3, 3, 4, 4], step=[0, 1, 0, 1, 0, 0, 1, 0, 1],
                rewards=[-1, 1, -2, 3, 3, 2, 5, 2, 7], x=[0, 0, 1, 1, 1, 2, 2, 3, 3],
                m=[[1, 1], [1, 1], [1, 1], [1, 2], [1, 0], [1, 2], [1, 0.5], [1, 2], [1, 1]],
                q=np.zeros(9), v=np.zeros(9))


def test_fqe_on_a_two_step_log_gives_the_hand_computed_value_by_backward_induction():
    from recgym.evaluation.ope import fqe_coefficients

    d = arrays(mu=np.full(9, 0.5), pi=np.full(9, 0.5), **TWO_STEP)
    assert fqe_coefficients(d, min_samples=1)[0] == pytest.approx(np.array([[2.0, 1.0], [1.0, 2.0]]))
    assert estimate(d, "fqe", samples=0, min_samples=1).value == pytest.approx(16 / 5)
    # step 1's four decisions below min_samples = 5: pooled with step 0's, whose target is then their reward
    # alone (the one-step return-to-go of a step-1 model); step 0 keeps its own 5
    pooled = fqe_coefficients(d, min_samples=5)[0]
    x, r, step = np.array(TWO_STEP["x"], float), np.array(TWO_STEP["rewards"], float), np.array(TWO_STEP["step"])
    assert pooled[1] == pytest.approx(np.polynomial.polynomial.polyfit(x, r, 1))
    m = np.array(TWO_STEP["m"])
    following = np.array([1, -1, 3, -1, -1, 6, -1, 8, -1])
    y0 = r + np.where(following >= 0, m[following] @ pooled[1], 0.0)
    assert pooled[0] == pytest.approx(np.polynomial.polynomial.polyfit(x[step == 0], y0[step == 0], 1))


def test_dr_is_fqe_when_every_weight_is_zero_after_the_first_step():
    # the target never takes a logged first action: DR keeps V̂_0(s_0) of each episode, FQE's value (the
    # one-step DR keeps only v̂(s_0))
    pi = [0, 0.5, 0, 0.5, 0, 0, 0.5, 0, 0.5]
    d = arrays(mu=np.full(9, 0.5), pi=pi, **{**TWO_STEP, "v": np.arange(9.0)})
    assert estimate(d, "dr", samples=0, min_samples=1).value == pytest.approx(16 / 5)
    assert estimate(d, "dr-myopic", samples=0).value == pytest.approx(np.mean([0, 2, 4, 5, 7]))


def test_on_policy_dr_with_a_deterministic_target_is_the_mean_return_whatever_the_model():
    # μ = π deterministic: every weight is 1 and V̂_t(s_t) = Q̂_t(s_t, a_t), so the model terms telescope away
    rng = np.random.default_rng(3)
    lengths = rng.integers(1, 5, size=40)
    episode = np.repeat(np.arange(40), lengths)
    step = np.concatenate([np.arange(k) for k in lengths])
    x = rng.normal(size=episode.size)
    rewards = rng.normal(size=episode.size) + x
    d = arrays(episode, step, rewards, mu=np.ones(episode.size), pi=np.ones(episode.size), q=np.zeros(episode.size),
               v=np.zeros(episode.size), x=x, m=np.vander(x, 3, increasing=True))
    mean_return = np.bincount(episode, weights=rewards).mean()
    # per-step least squares with an intercept leaves residuals summing to 0 on-policy, so FQE too is the mean
    # return; pooling every step (min_samples above the log's size) breaks that for FQE but not for DR
    for min_samples in (5, 1000):
        assert estimate(d, "dr", samples=0, min_samples=min_samples).value == pytest.approx(mean_return)
    assert estimate(d, "fqe", samples=0, min_samples=5).value == pytest.approx(mean_return)
    assert abs(estimate(d, "fqe", samples=0, min_samples=1000).value - mean_return) > 0.01


def test_dr_with_an_exact_q_model_has_no_variance_across_logs_of_a_deterministic_mdp():
    # three actions with features x = 0, 1, 2 in every state, reward r = 1 + x, two steps; the target plays
    # (0.1, 0.3, 0.6) and the logger (0.5, 0.3, 0.2): Q_1 = 1 + x, Q_0 = 1 + x + V_1 with V_1 = 1 + E_π[x] = 2.5,
    # the true value V_0 = 2.5 + 2.5 = 5. FQE's lines represent both Q_t, so every log's DR is exactly 5
    pi, mu = np.array([0.1, 0.3, 0.6]), np.array([0.5, 0.3, 0.2])
    scores = np.array([0.0, 1.0, 2.0])
    moments = np.array([1.0, pi @ scores])
    rng = np.random.default_rng(4)
    n = 100
    values = {"dr": [], "pdis": [], "dr-myopic": []}
    for _ in range(20):
        actions = rng.choice(3, size=(n, 2), p=mu).reshape(-1)
        x = scores[actions]
        d = arrays(np.repeat(np.arange(n), 2), np.tile([0, 1], n), 1 + x, mu[actions], pi[actions],
                   q=1 + x, v=np.full(2 * n, 1 + pi @ scores), x=x, m=np.tile(moments, (2 * n, 1)))
        for name in values:
            values[name].append(estimate(d, name, samples=0).value)
        result = estimate(d, "dr", samples=50)  # each resample refits the exact model: no spread either
        assert result.low == pytest.approx(5.0) and result.high == pytest.approx(5.0)
    assert np.allclose(values["dr"], 5.0)
    assert np.std(values["pdis"]) > 0.05 and np.std(values["dr-myopic"]) > 0.05


def test_dr_is_unbiased_and_has_less_variance_than_ips_with_an_exact_mean_reward_model():
    # a 5-armed Bernoulli bandit: logging softmax, a different target, the exact mean-reward model (the one-step
    # DR) and FQE's line in the arm's feature x = a, fitted on each log (the means are 0.1 + 0.2 x)
    rng = np.random.default_rng(1)
    means = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    mu = np.exp(np.arange(5) * -0.5)
    mu /= mu.sum()
    pi = np.array([0.05, 0.05, 0.1, 0.2, 0.6])
    truth = float(pi @ means)
    n, replicates = 200, 400
    found = {"pdis": [], "dr-myopic": [], "dr": [], "dm": []}
    for _ in range(replicates):
        actions = rng.choice(5, size=n, p=mu)
        rewards = (rng.random(n) < means[actions]).astype(float)
        d = arrays(np.arange(n), np.zeros(n, dtype=int), rewards, mu[actions], pi[actions],
                   q=means[actions], v=np.full(n, truth), x=actions, m=np.tile([1.0, pi @ np.arange(5)], (n, 1)))
        for name, values in found.items():
            values.append(estimate(d, name, samples=0).value)
    for name in ("pdis", "dr-myopic", "dr"):
        assert np.mean(found[name]) == pytest.approx(truth, abs=3 * np.std(found[name]) / np.sqrt(replicates))
    assert np.var(found["dr-myopic"]) < 0.5 * np.var(found["pdis"])
    assert np.var(found["dr"]) < 0.5 * np.var(found["pdis"])
    assert np.allclose(found["dm"], truth)  # the exact model's DM has no variance at all


def test_bootstrap_intervals_cover_the_truth_about_95_percent_of_the_time():
    rng = np.random.default_rng(2)
    means = np.array([0.2, 0.8])
    mu, pi = np.array([0.5, 0.5]), np.array([0.2, 0.8])
    truth = float(pi @ means)
    covered = 0
    for seed in range(100):
        actions = rng.choice(2, size=300, p=mu)
        rewards = (rng.random(300) < means[actions]).astype(float)
        d = arrays(np.arange(300), np.zeros(300, dtype=int), rewards, mu[actions], pi[actions])
        result = estimate(d, "pdis", samples=300, seed=seed)
        covered += result.low <= truth <= result.high
    assert 85 <= covered <= 100


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="unknown estimator"):
        estimate(BANDIT, "ips")
    for needs_model in ("dm", "fqe", "dr", "dr-myopic"):
        with pytest.raises(ValueError, match="reward model"):
            estimate(arrays([0], [0], [1], [0.5], [0.5]), needs_model)
    with pytest.raises(ValueError, match="reward model's scores"):
        estimate(arrays([0], [0], [1], [0.5], [0.5], q=[1], v=[1]), "fqe")
    with pytest.raises(ValueError, match="logging propensities must lie in"):
        estimate(arrays([0], [0], [1], [0.0], [0.5]), "pdis")
    with pytest.raises(ValueError, match="max_weight"):
        estimate(BANDIT, "pdis", max_weight=0)


# -- logs recorded on simulated users -----------------------------------------------------------------
@pytest.fixture(scope="module")
def run():
    return logged_data_run()


@pytest.fixture(scope="module")
def pmf(run):
    return greedy_pmf_for(run)


@pytest.fixture(scope="module")
def softmax_log(run, pmf):
    logging = SoftmaxProbabilities(pmf, 0.5)
    return record_transitions(logging, run.scenario, run.config, users="test", seed=3, card={"policy": "t"})


def test_a_recorded_log_holds_whole_episodes_with_their_final_observation(run, softmax_log):
    log = softmax_log
    assert log.n_episodes == run.scenario.users("test").size
    assert np.array_equal(np.unique(log.observations["user"]), run.scenario.users("test"))
    # the next observation is the same user's, also at the last step (not the autoreset's next user)
    assert np.array_equal(log.next_observations["user"], log.observations["user"])
    inner = np.flatnonzero(np.diff(log.episode) == 0)
    for key in ("history_items", "consumed"):
        assert np.array_equal(log.next_observations[key][inner], log.observations[key][inner + 1])
    ends = np.append(np.diff(log.episode) != 0, True)
    assert np.array_equal(ends, log.terminated | log.truncated)
    assert np.all(log.action_masks[np.arange(len(log)), log.actions])


def test_ips_of_the_logging_policy_itself_is_the_logs_mean_return(run, pmf, softmax_log):
    result = estimate_all(softmax_log, SoftmaxProbabilities(pmf, 0.5), estimators=("pdis", "wpdis"), samples=100)
    mean_return = softmax_log.episode_returns().mean()
    for name in ("pdis", "wpdis"):
        assert result[name].value == pytest.approx(mean_return)
        assert result[name].effective_sample_size == pytest.approx(softmax_log.n_episodes)
        assert result[name].max_weight == pytest.approx(1.0)


def test_estimates_of_other_targets_are_finite_and_dm_dr_use_the_fitted_model(run, pmf, softmax_log):
    model = RatingRewardModel(pmf).fit(softmax_log)
    targets = {"greedy": EpsilonMixture(GreedyProbabilities(pmf, run.scenario.n_items), 0.2),
               "uniform": UniformProbabilities()}
    for target in targets.values():
        result = estimate_all(softmax_log, target, model, samples=100)
        assert all(np.isfinite(r.value) and r.low <= r.high for r in result.values())
    # a greedy target's probabilities are one-hot on the greedy choice among the available items
    d = decision_arrays(softmax_log, GreedyProbabilities(pmf, run.scenario.n_items))
    chosen = pmf.predict(softmax_log.observations, action_masks=softmax_log.action_masks)[0]
    assert np.array_equal(d.target_propensities, (chosen == softmax_log.actions).astype(float))


def test_a_minari_export_round_trips(run, softmax_log, tmp_path):
    pytest.importorskip("minari")
    from recgym.experiments.transition_log import load_transition_log, save_transition_log

    env = run.training_env(1)
    out = save_transition_log(softmax_log, tmp_path / "log", env.observation_space, env.action_space)
    back = load_transition_log(out)
    for name in ("actions", "rewards", "terminated", "truncated", "propensities", "action_masks", "episode", "step"):
        assert np.array_equal(getattr(back, name), getattr(softmax_log, name)), name
    for key, value in softmax_log.observations.items():
        assert np.array_equal(back.observations[key], value) and np.array_equal(
            back.next_observations[key], softmax_log.next_observations[key]), key
    assert back.card == softmax_log.card
    import minari

    dataset = minari.MinariDataset(out / "data")
    assert dataset.total_episodes == softmax_log.n_episodes and dataset.total_steps == len(softmax_log)
    with pytest.raises(FileExistsError, match="nothing is overwritten"):
        save_transition_log(softmax_log, out, env.observation_space, env.action_space)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log"]  # no staging folder left behind


def test_without_minari_the_export_says_how_to_install_it(run, softmax_log, tmp_path, monkeypatch):
    from recgym.experiments.transition_log import save_transition_log

    monkeypatch.setitem(sys.modules, "minari", None)
    with pytest.raises(ImportError, match=r"pip install 'recgym\[offline\]'"):
        save_transition_log(softmax_log, tmp_path / "log", None, None)


def test_recgym_log_writes_a_dataset_with_its_card(tmp_path, capsys):
    pytest.importorskip("minari")
    import json

    from recgym.cli import main

    out = tmp_path / "log"
    args = ["log", "--env", "recgym/Synthetic-PMF-v0", "--policy", "greedy-pmf", "--epsilon", "0.3",
            "--n-users", "4", "--max-steps", "3", "--seed", "1", "--out", str(out)]
    assert main(args) == 0
    card = json.loads((out / "card.json").read_text())
    assert (card["policy"], card["epsilon"], card["seed"], card["n_users"]) == ("greedy-pmf", 0.3, 1, 4)
    assert card["env"] == "recgym/Synthetic-PMF-v0" and card["steps"] <= 12
    assert main(args) == 2 and "exists" in capsys.readouterr().err
    bad = ["log", "--env", "recgym/Synthetic-PMF-v0", "--policy", "random", "--temperature", "1",
           "--out", str(tmp_path / "other")]
    assert main(bad) == 2 and "random is already uniform" in capsys.readouterr().err


# -- grading estimates against the truth (recgym.evaluation.ope_grid) ---------------------------------
def test_error_summary_gives_the_hand_computed_bias_rmse_and_coverage():
    from recgym.evaluation.ope import OPEEstimate
    from recgym.evaluation.ope_grid import error_summary

    # truth 1: errors +1 and -3; intervals [1, 3] holds it, [-4, 0] does not
    estimates = [OPEEstimate("dr", 2.0, 1.0, 3.0, 10, 4.0, 2.0), OPEEstimate("dr", -2.0, -4.0, 0.0, 10, 2.0, 3.0)]
    summary = error_summary(estimates, 1.0)
    assert summary["mean"] == pytest.approx(0.0) and summary["bias"] == pytest.approx(-1.0)
    assert summary["rmse"] == pytest.approx(np.sqrt((1 + 9) / 2)) and summary["coverage"] == pytest.approx(0.5)
    assert summary["ess"] == pytest.approx(3.0)
    with pytest.raises(ValueError, match="no estimates"):
        error_summary([], 1.0)


class FirstAvailable:
    """Uniform over the first ``k`` available items of each state (``k=None``: over all of them)."""

    def __init__(self, k=None):
        self.k = k

    def action_probabilities(self, observations, masks):
        from recgym.evaluation.transitions import available_items

        available = available_items(observations, masks).astype(np.float64)
        if self.k is not None:
            available *= np.cumsum(available, axis=1) <= self.k
        return available / available.sum(axis=1, keepdims=True)


def test_policy_divergence_is_the_hand_computed_kl_and_infinite_off_support(softmax_log):
    from recgym.evaluation.ope_grid import policy_divergence
    from recgym.evaluation.transitions import available_items

    n_available = available_items(softmax_log.observations, softmax_log.action_masks).sum(axis=1)
    # KL(uniform over 2 items || uniform over m) = 2 * 0.5 * log(0.5 m) = log(m / 2), per state
    expected = np.mean(np.log(n_available / 2))
    assert policy_divergence(softmax_log, FirstAvailable(2), FirstAvailable()) == pytest.approx(expected)
    assert policy_divergence(softmax_log, FirstAvailable(), FirstAvailable()) == pytest.approx(0.0)
    assert policy_divergence(softmax_log, FirstAvailable(), FirstAvailable(1)) == np.inf


def test_ranking_agreement_counts_the_order_and_the_top_policy():
    from recgym.evaluation.ope_grid import ranking_agreement

    truth = {"bc": 1.0, "cql": 3.0, "bcq": 2.0}
    assert ranking_agreement(truth, {"bc": 0.0, "cql": 5.0, "bcq": 1.0}) == {"spearman": pytest.approx(1.0),
                                                                           "top1": True}
    reversed_ = ranking_agreement(truth, {"bc": 5.0, "cql": 0.0, "bcq": 1.0})
    assert reversed_["spearman"] == pytest.approx(-1.0) and reversed_["top1"] is False
    # one swap of the bottom two: ranks (1, 3, 2) against (2, 3, 1) -> 1 - 6 * (1 + 0 + 1) / (3 * 8) = 0.5
    swapped = ranking_agreement(truth, {"bc": 2.0, "cql": 9.0, "bcq": 1.0})
    assert swapped["spearman"] == pytest.approx(0.5) and swapped["top1"] is True
    assert np.isnan(ranking_agreement(truth, {"bc": 1.0, "cql": 1.0, "bcq": 1.0})["spearman"])
    with pytest.raises(ValueError, match="the same in truth and estimates"):
        ranking_agreement(truth, {"bc": 1.0})


def test_a_target_that_plays_masked_items_is_refused(run, pmf, softmax_log):
    import dataclasses

    masks = softmax_log.action_masks.copy()
    masks[:, 0] = softmax_log.actions == 0  # item 0 unavailable wherever it was not the logged action

    class IgnoresMask:
        def action_probabilities(self, observations, masks):
            return np.full(masks.shape, 1.0 / masks.shape[1])

    masked_log = dataclasses.replace(softmax_log, action_masks=masks)
    with pytest.raises(ValueError, match="rules out"):
        decision_arrays(masked_log, IgnoresMask(), RatingRewardModel(pmf).fit(softmax_log))
    # the FQE moments of a target that respects the mask: m_0 = 1 (its probabilities sum to 1 over the mask)
    d = decision_arrays(masked_log, UniformProbabilities(), RatingRewardModel(pmf).fit(softmax_log))
    assert np.allclose(d.target_moments[:, 0], 1.0) and np.all(np.isfinite(d.target_moments))


def test_the_committed_ope_page_is_what_its_saved_numbers_render():
    # docs/results/ope.md is generated: `python scripts/ope.py --from-json docs/results/ope.json` rewrites it
    import json
    from pathlib import Path

    from recgym.experiments.reports.ope import PLOT_NAME, render_page

    results = Path(__file__).resolve().parents[1] / "docs" / "results"
    saved = json.loads((results / "ope.json").read_text(encoding="utf-8"))
    assert render_page(saved, PLOT_NAME) == (results / "ope.md").read_text(encoding="utf-8")
