"""Issue 9's defects in environments, scenarios and stock clients: each test failed before its fix.

D3 (foreign ids), D4 (transposed batches), D6 (slates larger than what is left), D9 (huge episodes),
D11 (truncated cache), D13 (cache paths), D20 (messages), stock SB3 / Gymnasium clients, the thread
policy, and property-based tests of action validation in both action modes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import recgym  # noqa: F401  (registers the ids)
from recgym.envs import InvalidActionError, RecommendationEnv, RecommendationVectorEnv
from recgym.experiments.setup import make_run_setup
from recgym.scenario import fit_simulator, make_scenario

SYN = dict(n_users=60, n_items=50, density=0.3, seed=0)


@pytest.fixture(scope="module")
def scenario():
    return make_scenario("synthetic", "pmf", dataset_kwargs=SYN)


@pytest.fixture(scope="module")
def replay():
    return make_scenario("synthetic", "replay", dataset_kwargs=SYN)


# -- D3: only recgym's own ids -------------------------------------------------------------------
def test_a_foreign_environment_id_is_refused(scenario):
    with pytest.raises(ValueError, match="not a recgym environment"):
        make_run_setup("CartPole-v1", {}, "discrete")
    with pytest.raises(ValueError, match="unknown environment id"):
        make_run_setup("recgym/Nope-v0", {}, "discrete")


# -- D4: the documented action shapes only ------------------------------------------------------
def test_a_transposed_batch_of_actions_is_refused(scenario):
    venv = RecommendationVectorEnv(4, scenario, action_mode="embedding")
    venv.reset(seed=0)
    d = venv.single_action_space.shape[0]
    with pytest.raises(InvalidActionError, match="does not fit"):
        venv.step(np.zeros((d, 4), dtype=np.float32))
    slates = RecommendationVectorEnv(4, scenario, slate_size=3)
    slates.reset(seed=0)
    with pytest.raises(InvalidActionError, match="does not fit"):
        slates.step(np.zeros((3, 4), dtype=np.int64))
    discrete = RecommendationVectorEnv(4, scenario)
    discrete.reset(seed=0)
    with pytest.raises(InvalidActionError, match="does not fit"):
        discrete.step(np.zeros((4, 1), dtype=np.int64))


# -- D6: slates and what a user has left ----------------------------------------------------------
def test_users_without_a_full_slate_left_are_not_started(replay):
    env = RecommendationEnv(replay, users="all", slate_size=20)
    left = env.starts.available[env.users].sum(axis=1)
    assert (left >= 20).all()
    assert env.users.size < replay.n_users  # some users rated too few items for a slate of 20
    with pytest.raises(ValueError, match="slate_size"):
        RecommendationEnv(replay, users="all", slate_size=10_000)


def test_an_embedding_slate_episode_ends_when_the_items_run_out(replay):
    env = RecommendationEnv(replay, users="all", slate_size=5, action_mode="embedding", max_steps=1000)
    for seed in range(3):
        env.reset(seed=seed)
        done, shown = False, []
        while not done:
            _, _, term, trunc, info = env.step(env.action_space.sample())
            shown.extend(info["item"].tolist())
            done = term or trunc
        assert term and len(shown) == len(set(shown))  # never a duplicate, never a crash


# -- D9: huge episodes are refused or capped -----------------------------------------------------
def test_a_huge_max_steps_is_refused_and_the_window_is_capped_by_the_catalogue(scenario):
    with pytest.raises(ValueError, match="max_steps must be at most"):
        RecommendationEnv(scenario, max_steps=10**9)
    env = RecommendationEnv(scenario, max_steps=100_000)
    assert env.observation_space["consumed"].shape[0] <= scenario.n_items + env.config.history_length


# -- D11 and D13: the fitted-model cache ----------------------------------------------------------
def test_a_truncated_cached_model_is_refitted(tmp_path, monkeypatch):
    from recgym import scenario as scenario_module
    from recgym.data import make_synthetic_log

    monkeypatch.setenv("RECGYM_CACHE_DIR", str(tmp_path))
    log = make_synthetic_log(n_users=30, n_items=20, density=0.3, seed=1)
    first = fit_simulator(log, "pmf", {"dim": 4}, use_cache=True)
    (path,) = (tmp_path / "simulators").glob("*.npz")
    path.write_bytes(path.read_bytes()[:100])  # truncated: a BadZipFile on reading
    scenario_module._MEMORY_CACHE.clear()
    again = fit_simulator(log, "pmf", {"dim": 4}, use_cache=True)
    np.testing.assert_allclose(again.item_embeddings, first.item_embeddings)


def test_a_cache_entry_of_another_log_or_a_folder_is_named_with_the_fix(tmp_path, monkeypatch):
    from recgym import scenario as scenario_module
    from recgym.data import make_synthetic_log

    monkeypatch.setenv("RECGYM_CACHE_DIR", str(tmp_path))
    log = make_synthetic_log(n_users=30, n_items=20, density=0.3, seed=1)
    other = make_synthetic_log(n_users=25, n_items=18, density=0.3, seed=2)
    scenario_module._MEMORY_CACHE.clear()  # fitted in this cache folder, not taken from another test's
    fit_simulator(log, "pmf", {"dim": 4}, use_cache=True)
    (path,) = (tmp_path / "simulators").glob("*.npz")
    fit_simulator(other, "pmf", {"dim": 4}, use_cache=True)
    (other_path,) = set((tmp_path / "simulators").glob("*.npz")) - {path}
    other_path.replace(path)  # another log's model under this log's cache name
    scenario_module._MEMORY_CACHE.clear()
    with pytest.raises(ValueError, match=rf"cache entry {path} holds a model of 25 users x 18 items.*Delete it"):
        fit_simulator(log, "pmf", {"dim": 4}, use_cache=True)
    assert path.exists()  # reported, not deleted
    path.unlink()
    path.mkdir()
    (path / "mine.txt").write_text("x")
    with pytest.raises(ValueError, match=rf"cache entry {path} is not a file: move or delete it"):
        fit_simulator(log, "pmf", {"dim": 4}, use_cache=True)
    assert (path / "mine.txt").read_text() == "x"


def test_cache_file_names_stay_inside_the_cache(tmp_path, monkeypatch):
    from recgym.data import make_synthetic_log
    from recgym.scenario import cache_file_name

    assert "/" not in cache_file_name("../../escape/evil", "pmf", "k")
    assert not cache_file_name("/abs", "pmf", "k").startswith((".", "/"))
    monkeypatch.setenv("RECGYM_CACHE_DIR", str(tmp_path / "cache"))
    log = make_synthetic_log(n_users=30, n_items=20, density=0.3, seed=2)
    fit_simulator(dataclasses.replace(log, name="../../escape/evil"), "pmf", {"dim": 4}, use_cache=True)
    assert not (tmp_path / "escape").exists()
    assert len(list((tmp_path / "cache" / "simulators").glob("*.npz"))) == 1


# -- D20: messages that name the parameter ---------------------------------------------------------
@pytest.mark.parametrize("users, message", [(["a"], "integer user ids"), (None, "users must be"),
                                            ([1.5], "integer user ids"), ([], "non-empty")])
def test_bad_user_selections_name_the_parameter(scenario, users, message):
    with pytest.raises(ValueError, match=message):
        RecommendationEnv(scenario, users=users)


def test_a_negative_split_seed_names_the_parameter():
    with pytest.raises(ValueError, match="split_seed must be an integer >= 0"):
        make_scenario("synthetic", "pmf", dataset_kwargs=SYN, split_seed=-1)


def test_a_boolean_or_fractional_user_in_reset_options_is_refused(scenario):
    # users=[True] is refused; reset(options={"user": True}) was user 1
    env = RecommendationEnv(scenario, users="all")
    for user in (True, np.bool_(False)):
        with pytest.raises(ValueError, match="unknown user"):
            env.reset(options={"user": user})
    venv = RecommendationVectorEnv(2, scenario, users="all")
    for users in ([True, False], [1.7, 0.0]):
        with pytest.raises(ValueError, match=r"options\['users'\] must be integer user ids"):
            venv.reset(options={"users": users})
    assert venv.reset(options={"users": [1, 0]})[1]["user"].tolist() == [1, 0]


def test_unknown_keywords_are_all_listed(scenario):
    with pytest.raises(ValueError, match=r"unknown environment keyword\(s\) \['histroy_length', 'max_step'\]"):
        RecommendationEnv(scenario, histroy_length=5, max_step=3)
    with pytest.raises(ValueError, match="cannot change it"):
        RecommendationEnv(scenario, dataset="ml-100k")


# -- stock clients -------------------------------------------------------------------------------
def test_stock_sb3_agents_train_through_make_vec_env():
    from stable_baselines3 import A2C, DQN, PPO, TD3
    from stable_baselines3.common.env_util import make_vec_env

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        venv = make_vec_env("recgym/Synthetic-PMF-v0", n_envs=2, seed=0, env_kwargs={"dataset_kwargs": SYN})
        DQN("MultiInputPolicy", venv, seed=0, learning_starts=10).learn(40)
        PPO("MultiInputPolicy", venv, seed=0, n_steps=16, batch_size=32).learn(32)
        A2C("MultiInputPolicy", venv, seed=0, n_steps=8).learn(32)
        embed = make_vec_env("recgym/Synthetic-PMF-v0", n_envs=1, seed=0,
                             env_kwargs={"dataset_kwargs": SYN, "action_mode": "embedding"})
        TD3("MultiInputPolicy", embed, seed=0, learning_starts=10, buffer_size=500).learn(30)


@pytest.mark.parametrize("mode", ["sync", "async", "vector_entry_point"])
def test_every_gymnasium_vectorization_mode_works(mode):
    venv = gym.make_vec("recgym/Synthetic-PMF-v0", num_envs=2, vectorization_mode=mode, dataset_kwargs=SYN)
    venv.reset(seed=0)
    venv.step(venv.action_space.sample())
    venv.close()


def test_gymnasium_wrappers_work_unmodified():
    env = gym.wrappers.RecordEpisodeStatistics(gym.wrappers.TimeLimit(
        gym.make("recgym/Synthetic-PMF-v0", dataset_kwargs=SYN), max_episode_steps=3))
    env.reset(seed=0)
    for _ in range(3):
        *_, info = env.step(env.action_space.sample())
    assert "episode" in info


def test_an_unsupported_render_mode_warns_when_render_is_called():
    # stock clients pass render_mode="rgb_array" unasked (SB3's make_vec_env): building stays silent,
    # and the warning comes where it tells the user something, at render()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = RecommendationEnv(dataset="synthetic", dataset_kwargs=SYN, render_mode="rgb_array")
    assert env.render_mode is None
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode 'rgb_array' is not supported"):
        assert env.render() is None


def test_building_an_environment_leaves_the_process_blas_threads_alone():
    # a fresh process: the old environment changed the count once per process, on its first build
    code = (
        "import json\n"
        "from threadpoolctl import threadpool_info, threadpool_limits\n"
        "from recgym.envs import RecommendationEnv\n"
        "threadpool_limits(limits=2, user_api='blas')\n"
        "before = [i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas']\n"
        f"RecommendationEnv(dataset='synthetic', dataset_kwargs={SYN!r})\n"
        "after = [i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas']\n"
        "print(json.dumps([before, after]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 0, done.stderr
    before, after = json.loads(done.stdout.splitlines()[-1])
    if 2 not in before:
        pytest.skip(f"this machine's BLAS does not run 2 threads (counts {before})")
    assert after == before


# -- property-based: every action either works as documented or raises InvalidActionError ---------
_ARRAYS = st.one_of(
    st.integers(-3, 80), st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.text(max_size=2),
    st.lists(st.one_of(st.integers(-3, 80), st.floats(-2, 2), st.none()), max_size=6),
    st.lists(st.lists(st.one_of(st.floats(-1.5, 1.5), st.just(float('nan'))), min_size=0, max_size=6), max_size=4),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(action=_ARRAYS)
def test_discrete_actions_work_or_raise_invalid_action(scenario, action):
    env = RecommendationEnv(scenario, users="all")
    env.reset(seed=0)
    try:
        _, reward, _, _, info = env.step(action)
    except InvalidActionError:
        return
    assert 0 <= info["item"] < scenario.n_items and np.isfinite(reward)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), rows=st.integers(1, 3), dtype=st.sampled_from(["float32", "float64", "int64", "object"]))
def test_embedding_actions_work_or_raise_invalid_action(scenario, data, rows, dtype):
    venv = RecommendationVectorEnv(2, scenario, action_mode="embedding")
    venv.reset(seed=0)
    d = venv.single_action_space.shape[0]
    cols = data.draw(st.sampled_from([d, d - 1, d + 1, 1]))
    values = data.draw(st.lists(st.one_of(st.floats(-1.2, 1.2), st.sampled_from([float('nan'), float('inf')])),
                                min_size=rows * cols, max_size=rows * cols))
    action = np.asarray(values, dtype=float).reshape(rows, cols).astype(dtype)
    try:
        _, rewards, _, _, info = venv.step(action)
    except InvalidActionError:
        return
    assert action.shape == (2, d) and np.isfinite(rewards).all() and (info["item"] < scenario.n_items).all()
