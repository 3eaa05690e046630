"""The keys of ``recgym train --config``: examples/run.yaml and docs/cli.md list them all, typos get a hint."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from recgym.cli import main as cli_main
from recgym.experiments.config import ConfigError, TrainConfig, closest_key_hint, load_config_file, make_config

REPO_ROOT = Path(__file__).resolve().parents[1]
RUN_YAML = REPO_ROOT / "examples" / "run.yaml"


def _defaults() -> dict:
    return {name: field.get_default(call_default_factory=True) for name, field in TrainConfig.model_fields.items()}


def test_run_yaml_holds_every_key_at_its_default_and_loads_as_is():
    values = load_config_file(RUN_YAML)
    assert sorted(values) == sorted(TrainConfig.model_fields), "examples/run.yaml and TrainConfig list other keys"
    assert values == _defaults()
    assert make_config(**values) == TrainConfig()


def test_run_yaml_says_what_each_key_means():
    lines = RUN_YAML.read_text().splitlines()
    for name in TrainConfig.model_fields:
        at = next(i for i, line in enumerate(lines) if line.startswith(f"{name}:"))
        assert at > 0 and lines[at - 1].startswith("# "), f"examples/run.yaml: no comment above {name!r}"


def test_cli_md_lists_every_config_key_with_its_default():
    text = (REPO_ROOT / "docs" / "cli.md").read_text()
    section = text.split("### `--config` keys", 1)[1].split("\n## ", 1)[0]
    rows = {m["key"]: m["default"] for m in re.finditer(r"^\| `(?P<key>\w+)` \| `(?P<default>[^`]*)` \|", section, re.M)}
    assert sorted(rows) == sorted(TrainConfig.model_fields), "docs/cli.md's key table and TrainConfig differ"
    assert {key: yaml.safe_load(default) for key, default in rows.items()} == _defaults()


@pytest.mark.parametrize("key, hint", [
    ("n-envs", "did you mean `n_envs`?"),
    ("N_Envs", "did you mean `n_envs`?"),
    ("eval_episode", "did you mean `eval_episodes`?"),
    ("max_steps", "`max_steps` goes under `env_kwargs`"),
    ("data_dir", "`data_dir` goes under `env_kwargs`"),
    ("zzz", "valid keys: agent, agent_kwargs,"),
])
def test_an_unknown_key_names_the_closest_valid_one(key, hint):
    with pytest.raises(ConfigError, match=re.escape(f"{key}: unknown setting; {hint}")):
        make_config(**{key: 4})


def test_closest_key_hint_without_a_close_key_lists_the_valid_ones():
    assert closest_key_hint("colour", ["alpha", "beta"]) == "valid keys: alpha, beta"
    assert closest_key_hint(3, ["alpha"]) == "valid keys: alpha"


def test_train_config_file_with_a_hyphenated_key_exits_with_the_hint(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("agent: dqn\nn-envs: 4\n")
    assert cli_main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "n-envs: unknown setting; did you mean `n_envs`?" in err
    assert not (tmp_path / "run").exists()


def test_compare_grid_with_a_misspelt_key_names_the_closest_valid_one():
    from recgym.experiments.compare import load_grid

    with pytest.raises(ConfigError, match=re.escape("unknown setting 'n-envs' (did you mean `n_envs`?)")):
        load_grid(None, {"encoders": ["mean"], "envs": ["recgym/ML100K-PMF-v0"], "agents": ["dqn"], "n-envs": 4})
