"""Specification of the long-sequence encoders: hpmn (Ren et al., SIGIR 2019) and ubr (Qin et al., SIGIR 2020).

The generic properties every registered encoder shares (shapes, padding,
padding side, empty history, gradients, PMF initialisation, SB3 DQN) are
checked by ``tests/test_state_encoders.py``; here: each paper's equations
on hand-made histories, the memory-covariance regulariser reaching the
pretraining loss, and both encoders driving DQN and DRR on a Behavior
environment.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import agents
import state_encoders
from recgym.data import make_synthetic_log
from recgym.envs.spaces import ObservationLayout
from recgym.envs.vector import RecommendationVectorEnv
from recgym.pretrain import UserSequences, WindowBuilder, make_task
from simulators import BehaviorSimulator, PMFSimulator
from simulators.base import Behavior
from state_encoders import hpmn as hpmn_module
from state_encoders import ubr as ubr_module
from state_encoders.hpmn import covariance_regulariser
from tests.helpers import scenario_from_parts
from tests.test_state_encoders import as_sb3_tensors, random_observations

#: a window long enough for four memory layers (periods 1, 2, 4, 8)
LONG = ObservationLayout(n_users=5, n_items=12, history_length=16, consumed_length=20)
SPACE = LONG.space()
DIM, HIDDEN = 6, 5


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def hpmn(seed: int = 0, **kwargs) -> state_encoders.HPMNEncoder:
    torch.manual_seed(seed)
    return state_encoders.make("hpmn", SPACE, **{"embedding_dim": DIM, "hidden_size": HIDDEN, **kwargs}).eval()


def observations(batch: int = 6, fill: str = "random", seed: int = 0) -> dict[str, np.ndarray]:
    return random_observations(np.random.default_rng(seed), batch=batch, layout=LONG, fill=fill)


def history(items: list[int], times: list[float] | None = None, behaviors: list[int] | None = None,
            layout: ObservationLayout = LONG) -> dict[str, torch.Tensor]:
    """One observation whose history is ``items`` (oldest first), left-padded as the environment pads."""
    n, pad, k = layout.history_length, layout.pad_item, len(items)
    obs = random_observations(np.random.default_rng(0), batch=1, layout=layout, fill="empty")
    obs["history_items"][0, n - k:] = items
    obs["history_mask"][0, n - k:] = 1
    obs["history_time"][0, n - k:] = np.arange(-k, 0) if times is None else times
    obs["history_behavior"][0, n - k:] = [int(Behavior.CLICK)] * k if behaviors is None else behaviors
    return as_sb3_tensors(obs, layout.space())


# -- HPMN: the memory -------------------------------------------------------------------------------


def test_hpmn_memory_has_one_slot_per_layer():
    encoder = hpmn()
    obs = as_sb3_tensors(observations(), SPACE)
    with torch.no_grad():
        memory = encoder.memory(obs)
    assert encoder.n_layers == 4 and memory.shape == (6, 4, HIDDEN)  # [B, layers, H]
    assert encoder.features_dim == HIDDEN + DIM
    # a layer must be updated twice in a full window: N = 5 keeps periods 1 and 2
    short = state_encoders.make("hpmn", ObservationLayout(2, 12, 5, 6).space(), embedding_dim=DIM)
    assert short.n_layers == 2


def _gru_step(gru: torch.nn.GRU, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    return gru(x.view(1, 1, -1), h.view(1, 1, -1))[1].view(-1)


@pytest.mark.parametrize("length", [0, 1, 3, 8, 11, 16])
def test_hpmn_layer_j_is_updated_every_2_to_the_j_minus_1_steps_from_the_layer_below(length):
    """The memory equals the paper's writing rule run step by step: m^j_i = GRU_j(m^j_(i-1), m^(j-1)_i) if i mod 2^(j-1) = 0."""
    encoder = hpmn()
    rng = np.random.default_rng(length)
    items = rng.integers(0, LONG.n_items, size=length).tolist()
    behaviors = rng.integers(1, 4, size=length).tolist()
    obs = history(items, behaviors=behaviors)
    with torch.no_grad():
        memory = encoder.memory(obs)[0]  # [J, H]
        slots = [torch.zeros(HIDDEN) for _ in encoder.layers]  # zero initial states
        for i, (item, kind) in enumerate(zip(items, behaviors), start=1):
            below = encoder.embed_items(torch.tensor(item)) + encoder.behavior_embedding(torch.tensor(kind))  # m^0_i
            for j, gru in enumerate(encoder.layers):
                if i % 2**j:  # layer j + 1 has period 2^j
                    break
                slots[j] = _gru_step(gru, below, slots[j])
                below = slots[j]
    torch.testing.assert_close(memory, torch.stack(slots), rtol=1e-5, atol=1e-6)
    for j in range(encoder.n_layers):
        assert bool(torch.all(memory[j] == 0)) == (length < 2**j)  # a layer not yet updated holds its zero state


def test_hpmn_padding_changes_no_memory():
    """Ids, types and times at padded slots, holes in the mask and the padding side never reach the memory."""
    encoder = hpmn()
    rng = np.random.default_rng(1)
    obs = observations(batch=12, seed=1)
    with torch.no_grad():
        memory = encoder.memory(as_sb3_tensors(obs, SPACE))
        torch.testing.assert_close(encoder.memory(as_sb3_tensors(corrupt_padding_long(obs, rng), SPACE)), memory,
                                   rtol=0, atol=0)
        # the same valid items moved to the other side, in their order
        moved = {k: v.copy() for k, v in obs.items()}
        for b in range(len(obs["user"])):
            valid = obs["history_mask"][b] == 1
            order = np.r_[np.flatnonzero(valid), np.flatnonzero(~valid)]
            for key in ("history_items", "history_mask", "history_behavior", "history_time", "history_feedback"):
                moved[key][b] = obs[key][b][order]
        torch.testing.assert_close(encoder.memory(as_sb3_tensors(moved, SPACE)), memory, rtol=0, atol=0)


def corrupt_padding_long(obs: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {k: v.copy() for k, v in obs.items()}
    pad = out["history_mask"] == 0
    out["history_items"] = np.where(pad, rng.integers(0, LONG.n_items, size=pad.shape), out["history_items"])
    out["history_behavior"] = np.where(pad, rng.integers(0, 4, size=pad.shape), out["history_behavior"]).astype(np.int8)
    out["history_time"] = np.where(pad, 99.0, out["history_time"]).astype(np.float32)
    return out


# -- HPMN: the reading -------------------------------------------------------------------------------


def test_hpmn_read_weights_sum_to_one_over_the_slots():
    encoder = hpmn()
    obs = as_sb3_tensors(observations(batch=8), SPACE)  # some rows empty, some full
    with torch.no_grad():
        default = encoder.read_weights(obs)  # [B, K, J]
        targeted = encoder.read_weights(obs, torch.randint(0, LONG.n_items, (8, 3)))  # [B, M, K, J]
    assert default.shape == (8, 3, 4) and targeted.shape == (8, 3, 3, 4)
    for w in (default, targeted):
        assert torch.all(w >= 0)
        torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]))


def test_hpmn_reads_the_memory_in_k_hops_with_the_target_as_query():
    """s(v) = [q_K ; v], q_0 = W_q v, q_(k+1) = q_k H + Σ_j w^k_j m^j, w^k = softmax_j MLP_k([q, m, q - m, q ⊙ m])."""
    encoder = hpmn()
    obs = history([3, 5, 7, 1, 2, 9, 4], behaviors=[2, 1, 2, 2, 3, 1, 2])
    items = torch.tensor([[4, 8]])
    with torch.no_grad():
        memory = encoder.memory(obs)[0]  # [J, H]
        states = encoder.target_state(obs, items)[0]  # [2, H + d]
        for row, item in enumerate(items[0]):
            v = encoder.embed_items(item)
            q = encoder.query(v)
            for mlp in encoder.attention:
                qm = q.expand_as(memory)
                w = torch.softmax(mlp(torch.cat([qm, memory, qm - memory, qm * memory], -1)).squeeze(-1), 0)
                q = encoder.hop_map(q) + w @ memory
            torch.testing.assert_close(states[row], torch.cat([q, v]))
    assert not torch.allclose(states[0], states[1])  # the state depends on the candidate


def test_hpmn_features_path_queries_with_the_newest_behaviour():
    encoder = hpmn()
    obs = history([3, 5, 7], behaviors=[2, 1, 3])
    with torch.no_grad():
        newest = encoder.embed_items(torch.tensor(7)) + encoder.behavior_embedding(torch.tensor(3))
        state = encoder(obs)[0]
        q = encoder._read(newest.view(1, 1, -1), encoder.memory(obs))[0].view(-1)
    torch.testing.assert_close(state, torch.cat([q, newest]))


def test_hpmn_target_state_is_the_same_in_chunks(monkeypatch):
    encoder = hpmn()
    obs = as_sb3_tensors(observations(batch=3), SPACE)
    items = torch.arange(LONG.n_items).expand(3, -1)
    with torch.no_grad():
        whole = encoder.target_state(obs, items)
        monkeypatch.setattr(hpmn_module, "TARGET_CHUNK", 5)
        torch.testing.assert_close(encoder.target_state(obs, items), whole)


def test_hpmn_with_one_layer_is_a_single_gru_read_with_weight_one():
    encoder = hpmn(n_layers=1)
    obs = as_sb3_tensors(observations(), SPACE)
    with torch.no_grad():
        assert encoder.memory(obs).shape == (6, 1, HIDDEN)
        assert torch.all(encoder.read_weights(obs) == 1)


# -- HPMN: the covariance regulariser ---------------------------------------------------------------


def test_covariance_regulariser_matches_a_hand_computed_value():
    memory = torch.tensor([[[1.0, 0.0, -1.0], [2.0, 2.0, 2.0], [0.0, 3.0, 0.0]]])  # [B=1, J=3, H=3]
    centred = memory[0] - memory[0].mean(dim=1, keepdim=True)
    cov = centred @ centred.T / 3
    expected = torch.sqrt(cov[0, 1] ** 2 * 2 + cov[0, 2] ** 2 * 2 + cov[1, 2] ** 2 * 2)
    torch.testing.assert_close(covariance_regulariser(memory), expected.view(1))
    # identical slots are the most alike; one slot alone has nothing to differ from (and a finite gradient)
    single = torch.randn(4, 1, 5, requires_grad=True)
    covariance_regulariser(single).sum().backward()
    assert torch.all(covariance_regulariser(single) < 1e-12) and torch.isfinite(single.grad).all()


def test_hpmn_regulariser_is_collected_once_after_a_training_pass_only():
    encoder = hpmn(memory_reg=0.5).train()
    obs = as_sb3_tensors(observations(batch=5, fill="full"), SPACE)
    encoder(obs)
    with torch.no_grad():
        expected = 0.5 * covariance_regulariser(encoder.memory(obs)).sum()
    extra = encoder.pop_auxiliary_loss()
    torch.testing.assert_close(extra, expected)
    assert encoder.pop_auxiliary_loss() is None  # collected once
    encoder.eval()
    encoder(obs)
    assert encoder.pop_auxiliary_loss() is None  # evaluation adds nothing
    off = hpmn(memory_reg=0.0).train()
    off(obs)
    assert off.pop_auxiliary_loss() is None


@pytest.mark.parametrize("task_name", ["ctr", "next-item"])
def test_pretraining_loss_adds_the_memory_regulariser(task_name):
    log = make_synthetic_log(n_users=20, n_items=12, density=0.5, seed=0)
    windows = WindowBuilder(UserSequences.from_log(log), log.n_users, history_length=LONG.history_length)
    task = make_task(task_name)
    targets = task.split(windows.sequences)["train"][:16]
    torch.manual_seed(0)
    encoder = state_encoders.make("hpmn", windows.observation_space, embedding_dim=DIM, memory_reg=1.0)
    head = task.make_head(encoder, windows)
    plain = state_encoders.make("hpmn", windows.observation_space, embedding_dim=DIM, memory_reg=0.0)
    plain.load_state_dict(encoder.state_dict())
    with_regulariser = task.loss(encoder.train(), head, windows, targets)
    without = task.loss(plain.train(), head, windows, targets)
    with torch.no_grad():
        regulariser = covariance_regulariser(encoder.eval().memory(windows.tensors(targets))).sum()
    assert regulariser > 0
    torch.testing.assert_close(with_regulariser - without, regulariser, rtol=1e-4, atol=1e-6)


# -- UBR ----------------------------------------------------------------------------------------------

#: hand-made genres of the 12 items: columns A, B, C
GENRES = np.zeros((LONG.n_items, 3), dtype=np.float32)
GENRES[[0, 1, 2]] = [1, 0, 0]
GENRES[[3, 4]] = [1, 1, 0]
GENRES[[5, 6]] = [0, 1, 1]
GENRES[7] = [1, 1, 1]
# items 8 .. 11 have no genre


def ubr(seed: int = 0, **kwargs) -> state_encoders.UBREncoder:
    torch.manual_seed(seed)
    kwargs = {"embedding_dim": DIM, "item_features": GENRES, "k": 3, "time_bucket": 2.0, **kwargs}
    return state_encoders.make("ubr", SPACE, **kwargs).eval()


def test_ubr_retrieves_exactly_the_k_most_overlapping_behaviours():
    """Target item 3 (genres A, B), now = step 0: overlap = same item + shared genres + within 2 steps."""
    items = [7, 0, 5, 3, 8, 1, 4, 9]  # oldest first, at steps -8 .. -1 (slots 8 .. 15)
    obs = history(items)
    #          item:  7  0  5  3  8  1  4  9
    # same item:      0  0  0  1  0  0  0  0
    # shared genres:  2  1  1  2  0  1  2  0
    # recent (<= 2):  0  0  0  0  0  0  1  1
    # overlap:        2  1  1  3  0  1  3  1
    found = ubr().retrieve(obs, torch.tensor([[3]]))
    slots = found.positions[0, 0].tolist()
    assert [items[s - 8] for s in slots] == [4, 3, 7]  # 3 and 3 (item 4 is newer), then 2
    assert found.overlap[0, 0].tolist() == [3, 3, 2] and found.mask.all()
    # target 8 (no genre): the same item and the two recent ones, one each: recency orders them
    found = ubr().retrieve(obs, torch.tensor([[8]]))
    assert [items[s - 8] for s in found.positions[0, 0].tolist()] == [9, 4, 8]
    # retrieval="recent" ignores the target: the last k
    recent = ubr(retrieval="recent").retrieve(obs, torch.tensor([[3]]))
    assert [items[s - 8] for s in recent.positions[0, 0].tolist()] == [9, 4, 1]
    assert recent.overlap[0, 0].tolist() == [1, 3, 1]  # what they share with the target, reported all the same


def test_ubr_never_retrieves_padding_and_marks_missing_behaviours():
    obs = history([5, 6])
    found = ubr(k=4).retrieve(obs, torch.tensor([[6, 0]]))
    assert found.mask[0].tolist() == [[True, True, False, False]] * 2
    assert set(found.positions[0, :, :2].flatten().tolist()) == {14, 15}
    encoder = ubr()
    raw = observations(batch=10, seed=3)
    items = torch.randint(0, LONG.n_items, (10, 2))
    with torch.no_grad():
        before = encoder.target_state(as_sb3_tensors(raw, SPACE), items)
        after = encoder.target_state(as_sb3_tensors(corrupt_padding_long(raw, np.random.default_rng(4)), SPACE), items)
    torch.testing.assert_close(after, before, rtol=0, atol=0)


def test_ubr_pools_the_retrieved_behaviours_with_the_target_as_query():
    """s(A) = [Σ_j α_j b_j ; t], α = softmax over the retrieved of <W_q t + c_q, b_j>."""
    encoder = ubr()
    items, kinds = [7, 0, 5, 3, 8, 1, 4, 9], [2, 1, 2, 3, 1, 2, 2, 1]
    obs = history(items, behaviors=kinds)
    with torch.no_grad():
        state = encoder.target_state(obs, torch.tensor([[3]]))[0, 0]
        t = encoder.embed_items(torch.tensor(3)) + encoder.content(torch.tensor(GENRES[3]))
        b = torch.stack([encoder.embed_items(torch.tensor(i)) + encoder.content(torch.tensor(GENRES[i]))
                         + encoder.behavior_embedding(torch.tensor(k)) for i, k in zip(items, kinds)])
        chosen = b[[6, 3, 0]]  # items 4, 3, 7: the retrieved ones
        alpha = torch.softmax(chosen @ encoder.query(t), dim=0)
    torch.testing.assert_close(state, torch.cat([alpha @ chosen, t]))


def test_ubr_features_path_queries_with_the_newest_behaviour():
    encoder = ubr()
    obs = history([7, 0, 5], times=[-3.0, -1.0, -2.0])  # the newest is item 0 (time -1), not the last slot
    assert encoder.default_query(obs).tolist() == [0]
    with torch.no_grad():
        torch.testing.assert_close(encoder(obs), encoder.target_state(obs, torch.tensor([[0]]))[:, 0])
        empty = encoder(as_sb3_tensors(observations(batch=2, fill="empty"), SPACE))
    assert torch.all(empty == 0)


def test_ubr_target_state_is_the_same_in_chunks(monkeypatch):
    encoder = ubr()
    obs = as_sb3_tensors(observations(batch=3), SPACE)
    items = torch.arange(LONG.n_items).expand(3, -1)
    with torch.no_grad():
        whole = encoder.target_state(obs, items)
        monkeypatch.setattr(ubr_module, "TARGET_CHUNK", 5)
        torch.testing.assert_close(encoder.target_state(obs, items), whole)


def test_long_sequence_encoders_refuse_bad_arguments_with_the_fix():
    with pytest.raises(ValueError, match="retrieval must be 'overlap'"):
        ubr(retrieval="bm25")
    with pytest.raises(ValueError, match="k .behaviours retrieved. must be a positive integer"):
        ubr(k=0)
    with pytest.raises(ValueError, match="time_bucket must be > 0"):
        ubr(time_bucket=0)
    with pytest.raises(ValueError, match=r"\(n_items, F\).*item_content_features"):
        ubr(item_features=GENRES[:-1])
    with pytest.raises(ValueError, match="n_layers must be a positive integer"):
        hpmn(n_layers=0)
    with pytest.raises(ValueError, match="memory_reg must be >= 0"):
        hpmn(memory_reg=-1.0)
    assert ubr(k=99).k == LONG.history_length  # never more than the window holds


# -- agents on a Behavior environment ------------------------------------------------------------------


@pytest.fixture(scope="module")
def behaviour_scenario():
    log = make_synthetic_log(n_users=40, n_items=30, density=0.4, seed=2)
    pmf = PMFSimulator(dim=6, n_iters=8, seed=0).fit(log)
    users = np.random.default_rng(2).permutation(40)
    return scenario_from_parts(log, BehaviorSimulator(rating_model=pmf).fit(log), users[:32], users[32:], dim=6)


def _long_encoder_kwargs(scenario, name: str) -> dict:
    kwargs = {"hidden_size": 8, "attention_hidden": (8,)} if name == "hpmn" else {"k": 4}
    if name == "ubr":
        kwargs["item_features"] = scenario.log.item_genres()
    return kwargs


@pytest.mark.parametrize("agent", ["dqn", "drr"])
@pytest.mark.parametrize("name", ["hpmn", "ubr"])
def test_long_sequence_encoder_drives_agents_on_a_behavior_environment(behaviour_scenario, agent, name):
    env = RecommendationVectorEnv(4, scenario=behaviour_scenario, history_length=12, max_steps=10,
                                  action_mode=agents.spec(agent).action_mode)
    model = agents.make(agent, env, encoder=name, seed=0, encoder_kwargs=_long_encoder_kwargs(behaviour_scenario, name),
                        learning_starts=32, batch_size=8, train_freq=1, gradient_steps=1)
    extractor = model.q_net.features_extractor if agent == "dqn" else model.critic.features_extractor
    before = [p.detach().clone() for p in extractor.parameters() if p.requires_grad]
    model.learn(96)
    after = [p.detach().clone() for p in extractor.parameters() if p.requires_grad]
    assert any(not torch.equal(b, a) for b, a in zip(before, after))  # the encoder learned from the agent's loss
    obs, _ = env.reset(seed=1)
    actions, _ = model.predict(obs, deterministic=True)
    assert np.all(np.isfinite(actions))


@pytest.mark.parametrize("name", ["hpmn", "ubr"])
def test_dqn_target_head_scores_each_candidate_as_the_query(behaviour_scenario, name):
    env = RecommendationVectorEnv(2, scenario=behaviour_scenario, history_length=12, max_steps=10)
    model = agents.make("dqn", env, encoder=name, seed=0, encoder_kwargs=_long_encoder_kwargs(behaviour_scenario, name),
                        policy_kwargs={"q_head": "target"}, learning_starts=16, batch_size=8, train_freq=1,
                        gradient_steps=1)
    obs = model.policy.obs_to_tensor(env.reset(seed=0)[0])[0]
    with torch.no_grad():
        every = model.q_net.q_values(obs)  # [B, n_items]: one read per candidate
        some = model.q_net.q_values(obs, torch.tensor([[5, 9]] * 2))
    assert every.shape == (2, behaviour_scenario.log.n_items)
    torch.testing.assert_close(every[:, [5, 9]], some)
    model.learn(48)


@pytest.mark.parametrize("name", ["hpmn", "ubr"])
@pytest.mark.parametrize("freeze", [True, False], ids=["frozen", "fine-tuned"])
def test_pretrained_long_sequence_encoder_loads_into_dqn_frozen_or_fine_tuned(behaviour_scenario, tmp_path, name,
                                                                             freeze):
    """Click-through pretraining (each paper's task) on the training users, then DQN on the Behavior env."""
    from recgym.pretrain import ClickThroughTask, TrainerConfig, pretrain_encoder
    from state_encoders.weights import save_pretrained

    kwargs = {"embedding_dim": 6, **_long_encoder_kwargs(behaviour_scenario, name)}
    trained = pretrain_encoder(behaviour_scenario.training_log(), name, ClickThroughTask(), history_length=12,
                               encoder_kwargs=kwargs, config=TrainerConfig(epochs=1, batch_size=256, progress=False))
    save_pretrained(trained.encoder, kwargs, tmp_path)
    env = RecommendationVectorEnv(4, scenario=behaviour_scenario, history_length=12, max_steps=10)
    model = agents.make("dqn", env, encoder=name, seed=0, learning_starts=16, batch_size=8,
                        encoder_kwargs={"weights": str(tmp_path), "freeze": freeze})
    before = {k: v.detach().clone() for k, v in model.q_net.features_extractor.state_dict().items()}
    for key, value in trained.encoder.state_dict().items():
        torch.testing.assert_close(before[key], value, msg=key)  # starts from the pretrained weights
    model.learn(64)
    after = model.q_net.features_extractor.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert (changed == []) if freeze else changed


def test_ubr_tabulated_overlaps_match_the_product_for_large_catalogues(monkeypatch):
    obs = as_sb3_tensors(observations(batch=6, fill="full"), SPACE)
    items = torch.randint(0, LONG.n_items, (6, 4))
    tabulated = ubr()
    monkeypatch.setattr(ubr_module, "MAX_SHARED_TABLE", 0)  # a catalogue too large to tabulate
    computed = ubr()
    assert tabulated.shared_features is not None and computed.shared_features is None
    with torch.no_grad():
        for a, b in zip(tabulated.retrieve(obs, items), computed.retrieve(obs, items)):
            torch.testing.assert_close(a, b)
        torch.testing.assert_close(tabulated.target_state(obs, items), computed.target_state(obs, items))
