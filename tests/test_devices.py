"""The device path: ``auto`` / ``cpu`` / ``cuda`` resolution, agents and pretraining on a chosen device,
checkpoints written on a GPU loading on a CPU-only machine, and the same results on either device.

Every test but the last runs on a CPU-only machine; the GPU comparisons are skipped where torch sees no CUDA.
"""

from __future__ import annotations

import io
import json
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import agents
import state_encoders
from recgym.cli import main as cli_main
from recgym.data import make_synthetic_log
from recgym.devices import module_device, resolve_device
from recgym.envs.vector import RecommendationVectorEnv
from recgym.experiments.compare.cells import record_path
from recgym.experiments.compare.grid import make_grid
from recgym.experiments.compare.runner import check_finished_cells
from recgym.experiments.config import ConfigError, make_config
from recgym.experiments.setup import make_run_setup
from recgym.experiments.evaluate import evaluate_run
from recgym.experiments.run_dir import RunDir
from tests.helpers import train_run
from recgym.pretrain import NextItemTask, TrainerConfig, UserSequences, WindowBuilder, fit
from simulators.pmf import PMFSimulator
from tests.helpers import scenario_from_parts

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HAS_CUDA = torch.cuda.is_available()
needs_no_cuda = pytest.mark.skipif(HAS_CUDA, reason="checks the behaviour of a machine without CUDA")
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
SMALL_ENV = {"dataset_kwargs": {"n_users": 60, "n_items": 80, "seed": 1}, "max_steps": 10}


@pytest.fixture(scope="module")
def scenario():
    log = make_synthetic_log(n_users=60, n_items=80, density=0.15, seed=0)
    sim = PMFSimulator(dim=8).fit(log)
    perm = np.random.default_rng(0).permutation(60)
    return scenario_from_parts(log, sim, perm[:48], perm[48:], dim=8)


def vec_env(scenario, mode: str = "discrete", n: int = 8) -> RecommendationVectorEnv:
    return RecommendationVectorEnv(n, scenario=scenario, users="train", action_mode=mode)


# -- resolution -------------------------------------------------------------------------------------------


def test_auto_is_cuda_when_torch_sees_a_gpu_and_the_cpu_otherwise(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")


def test_cuda_without_cuda_and_unknown_names_are_clear_errors(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="device 'cuda' was asked for.*use device 'auto' or 'cpu'"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown device 'gpu'; choose one of auto, cpu, cuda"):
        resolve_device("gpu")
    with pytest.raises(ConfigError, match="device: unknown device 'gpu'"):
        make_config(device="gpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        TrainerConfig(device="tpu")


@needs_no_cuda
def test_make_load_train_and_pretrain_refuse_cuda_on_a_machine_without_it(scenario, tmp_path, capsys):
    env = vec_env(scenario)
    with pytest.raises(ValueError, match="'cuda' was asked for"):
        agents.make("dqn", env, device="cuda")
    model = agents.make("dqn", env, seed=0)
    model.save(tmp_path / "model")
    with pytest.raises(ValueError, match="'cuda' was asked for"):
        agents.load(tmp_path / "model", env, device="cuda")
    # refused before anything is written
    out = tmp_path / "run"
    assert cli_main(["train", "--env", "recgym/Synthetic-PMF-v0", "--steps", "10", "--device", "cuda",
                     "--out", str(out), "--no-progress"]) == 2
    assert "'cuda' was asked for" in capsys.readouterr().err and not out.exists()
    assert cli_main(["pretrain", "--encoder", "mean", "--dataset", "synthetic", "--device", "cuda",
                     "--out", str(out), "--no-progress"]) == 2
    assert "'cuda' was asked for" in capsys.readouterr().err and not out.exists()
    assert cli_main(["compare", "--encoders", "mean", "--envs", "recgym/Synthetic-PMF-v0", "--agents", "dqn",
                     "--baselines", "random", "--device", "cuda", "--out", str(out), "--no-display"]) == 2
    assert "'cuda' was asked for" in capsys.readouterr().err and not out.exists()


def test_the_device_setting_reaches_train_pretrain_and_grid_cells():
    assert make_config().device == "auto" and make_config(device="cpu").device == "cpu"
    grid = make_grid({"encoders": ["mean"], "envs": ["recgym/Synthetic-PMF-v0"], "agents": ["dqn"], "seeds": [0],
                      "baselines": ["random"], "device": "cpu"})
    assert {cell.config.device for cell in grid.cells()} == {"cpu"} and grid.to_json()["device"] == "cpu"
    with pytest.raises(ConfigError, match="device must be one of auto, cpu, cuda, got 'gpu'"):
        make_grid({"encoders": ["mean"], "envs": ["recgym/Synthetic-PMF-v0"], "agents": ["dqn"], "device": "gpu"})


def test_a_grid_rerun_on_another_device_reuses_its_finished_cells(tmp_path):
    values = {"encoders": ["mean"], "envs": ["recgym/Synthetic-PMF-v0"], "agents": ["dqn"], "seeds": [0],
              "baselines": []}
    cell = make_grid({**values, "device": "cuda"}).cells()[0]
    record_path(tmp_path, cell).parent.mkdir(parents=True)
    record_path(tmp_path, cell).write_text(json.dumps({"status": "done", "config": cell.config.to_json()}))
    check_finished_cells(tmp_path, make_grid({**values, "device": "cpu"}).cells())  # the device is no setting
    old = {k: v for k, v in cell.config.to_json().items() if k != "device"}  # a record from before the setting
    record_path(tmp_path, cell).write_text(json.dumps({"status": "done", "config": old}))
    check_finished_cells(tmp_path, make_grid(values).cells())
    with pytest.raises(ValueError, match="differs in \\['steps'\\]"):
        check_finished_cells(tmp_path, make_grid({**values, "steps": 10}).cells())


# -- agents on the resolved device -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dqn", "drr", "deers"])
def test_an_agent_its_encoders_buffers_and_replay_samples_live_on_its_device(scenario, name):
    kwargs = {"policy_kwargs": {"q_head": "prior"}} if name == "dqn" else {}
    model = agents.make(name, vec_env(scenario, agents.spec(name).action_mode), seed=0, device="auto",
                        learning_starts=16, **kwargs)
    model.learn(48)
    assert model.device == resolve_device("auto")
    tensors = [*model.policy.parameters(), *model.policy.buffers()]
    assert tensors and {t.device for t in tensors} == {model.device}
    batch = model.replay_buffer.sample(4)
    assert batch.observations["history_items"].device.type == model.device.type


def _trained_dqn(scenario, device: str, q_head: str = "prior", steps: int = 64, updates: int = 12):
    """DQN with the fold-in prior head: a buffer filled by the seeded random warm-up, then ``updates`` steps."""
    model = agents.make("dqn", vec_env(scenario), seed=0, device=device, learning_starts=steps,
                        policy_kwargs={"q_head": q_head})
    model.learn(steps)  # random unconsumed items from the agent's own generator: the same on every device
    np.random.seed(0)  # SB3's uniform replay sampling draws from numpy's global generator
    model.train(gradient_steps=updates, batch_size=16)
    return model


def _trained_drr(scenario, device: str, steps: int = 64, updates: int = 8):
    model = agents.make("drr", vec_env(scenario, "embedding"), seed=0, device=device, learning_starts=steps)
    model.learn(steps)
    model.train(gradient_steps=updates, batch_size=16)  # PER samples with its own seeded generator
    return model


def _state(model) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in model.policy.state_dict().items()}


def _pretrained_mean(scenario, device: str):
    torch.manual_seed(0)
    seq = UserSequences.from_log(scenario.training_log())
    windows = WindowBuilder(seq, scenario.n_users, history_length=3)
    task = NextItemTask()
    encoder = state_encoders.make("mean", windows.observation_space, embedding_dim=8)
    result = fit(encoder, task.make_head(encoder, windows), task, windows, task.split(seq),
                 TrainerConfig(epochs=2, patience=None, batch_size=256, lr=1e-2, progress=False, device=device))
    return encoder, result


@needs_no_cuda
def test_auto_and_cpu_give_identical_results_on_a_machine_without_cuda(scenario):
    for train_fn in (_trained_dqn, _trained_drr):
        on_cpu, on_auto = _state(train_fn(scenario, "cpu")), _state(train_fn(scenario, "auto"))
        assert on_cpu.keys() == on_auto.keys()
        for key in on_cpu:
            np.testing.assert_array_equal(on_cpu[key], on_auto[key], err_msg=key)
    (enc_cpu, res_cpu), (enc_auto, res_auto) = _pretrained_mean(scenario, "cpu"), _pretrained_mean(scenario, "auto")
    assert module_device(enc_auto) == torch.device("cpu")
    assert res_cpu.test == res_auto.test and res_cpu.valid == res_auto.valid
    for a, b in zip(enc_cpu.state_dict().values(), enc_auto.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@needs_cuda
def test_cpu_and_cuda_give_the_same_results_up_to_floating_point_tolerance(scenario):
    for train_fn in (_trained_dqn, _trained_drr):
        on_cpu, on_gpu = _state(train_fn(scenario, "cpu")), _state(train_fn(scenario, "cuda"))
        for key in on_cpu:
            np.testing.assert_allclose(on_cpu[key], on_gpu[key], rtol=1e-4, atol=1e-5, err_msg=key)
    cpu_q = _trained_dqn(scenario, "cpu").action_scores(_observations(scenario))
    gpu_q = _trained_dqn(scenario, "cuda").action_scores(_observations(scenario))
    np.testing.assert_allclose(cpu_q, gpu_q, rtol=1e-4, atol=1e-5)
    (enc_cpu, res_cpu), (enc_gpu, res_gpu) = _pretrained_mean(scenario, "cpu"), _pretrained_mean(scenario, "cuda")
    assert module_device(enc_gpu).type == "cuda"
    for key in res_cpu.test:
        assert res_cpu.test[key] == pytest.approx(res_gpu.test[key], abs=1e-3), key
    for a, b in zip(enc_cpu.state_dict().values(), enc_gpu.state_dict().values()):
        torch.testing.assert_close(a, b.cpu(), rtol=1e-4, atol=1e-5)


def _observations(scenario) -> dict[str, np.ndarray]:
    obs, _ = vec_env(scenario).reset(seed=3)
    return obs


# -- checkpoints written on a GPU ---------------------------------------------------------------------------

_TAG_AS_CUDA = threading.local()


def _cuda_tagger(storage):
    # what torch.save writes for a storage that lives on the first GPU: its location tag "cuda:0"
    return "cuda:0" if getattr(_TAG_AS_CUDA, "on", False) else None


def _no_deserializer(storage, location):
    return None  # loading goes to torch's own deserializers: "cuda:0" needs CUDA unless mapped


torch.serialization.register_package(1, _cuda_tagger, _no_deserializer)


def save_as_if_on_cuda(save, *args, **kwargs) -> None:
    """Call ``save`` while every tensor it writes is tagged as a CUDA tensor (``torch.save``'s device tags)."""
    _TAG_AS_CUDA.on = True
    try:
        save(*args, **kwargs)
    finally:
        _TAG_AS_CUDA.on = False


def _claims_cuda(zip_path: Path) -> None:
    """Fail unless loading the saved policy without mapping it needs CUDA (the file says "GPU")."""
    with zipfile.ZipFile(zip_path) as archive:
        payload = archive.read("policy.pth")
    if HAS_CUDA:
        assert torch.load(io.BytesIO(payload), weights_only=True)  # it loads onto the GPU
        return
    with pytest.raises(RuntimeError, match="CUDA"):
        torch.load(io.BytesIO(payload), weights_only=True)


@pytest.mark.parametrize("name", ["dqn", "drr"])
def test_an_agent_saved_on_a_gpu_loads_and_predicts_on_the_cpu(scenario, tmp_path, name):
    mode = agents.spec(name).action_mode
    env = vec_env(scenario, mode)
    model = agents.make(name, env, seed=0, device="cpu", learning_starts=16)
    model.learn(48)
    path = tmp_path / "gpu-model.zip"
    save_as_if_on_cuda(model.save, path)
    _claims_cuda(path)
    loaded = agents.load(path, env, device="cpu" if HAS_CUDA else "auto")
    assert loaded.device == torch.device("cpu")
    assert {t.device.type for t in loaded.policy.parameters()} == {"cpu"}
    obs, _ = env.reset(seed=3)
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])


def _gpu_run(tmp_path: Path) -> Path:
    """A `recgym train` run folder as a GPU machine writes it: device cuda, checkpoint tensors tagged cuda:0."""
    out = tmp_path / "run"
    config = make_config(env="recgym/Synthetic-PMF-v0", agent="dqn", encoder="mean", steps=200, seed=0, n_envs=8,
                         checkpoint_every=200, eval_every=200, eval_episodes=16, env_kwargs=SMALL_ENV,
                         agent_kwargs={"learning_starts": 50, "buffer_size": 2_000}, device="cpu")
    train_run(config, out, progress=False)
    run = RunDir(out)
    folder = run.latest_checkpoint()
    env = make_run_setup(config.env, config.env_kwargs, "discrete").training_env(8)
    model = agents.load(folder / "model.zip", env, device="cpu")
    model.load_replay_buffer(folder / "replay_buffer.pkl")
    model.replay_buffer.device = torch.device("cuda")  # SB3 pickles the buffer with its device
    save_as_if_on_cuda(model.save, folder / "model.zip")
    model.save_replay_buffer(folder / "replay_buffer.pkl")
    saved = json.loads(run.config.read_text())
    run.config.write_text(json.dumps({**saved, "device": "cuda"}))
    return out


@needs_no_cuda
def test_a_run_trained_on_a_gpu_evaluates_and_resumes_on_a_cpu_only_machine(tmp_path):
    out = _gpu_run(tmp_path)
    _claims_cuda(RunDir(out).latest_checkpoint() / "model.zip")
    rows = evaluate_run(out, device="auto")
    assert rows[0]["episodes"] > 0
    # the device is a runtime choice: the resumed run may say another one than the saved configuration
    saved = json.loads(RunDir(out).config.read_text())
    resumed = make_config(**{**saved, "steps": 400, "device": "auto"})
    with pytest.raises(ValueError, match="'cuda' was asked for"):
        train_run(resumed.model_copy(update={"device": "cuda"}), out, resume=True, progress=False)
    results = train_run(resumed, out, resume=True, progress=False)
    assert results["device"] == "cpu" and results["steps"] >= 400
    assert json.loads(RunDir(out).config.read_text())["device"] == "auto"
