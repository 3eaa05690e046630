"""The comparison with RecBole (recgym.pretrain.recbole_reference / recbole_report): RecBole's settings, the
records of its runs, the parent <-> child protocol, the timing conditions and the report, on hand-made inputs.

RecBole itself is never needed: its side runs in its own virtual environment, and these tests check what
recgym builds for it and makes of what it reports.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from recgym.pretrain import recbole_reference as ref
from recgym.pretrain.recbole_report import encoder_table_with_scores, report_markdown, timing_lines

REPO = Path(__file__).resolve().parents[1]


# -- RecBole's settings -----------------------------------------------------------------------


def test_recbole_config_states_the_shared_protocol_for_each_task(tmp_path):
    sasrec = ref.recbole_config("SASRec", 7, 3, tmp_path / "run", tmp_path / "data")
    assert sasrec["data_path"] == str(tmp_path / "data") and sasrec["dataset"] == "ml-100k"
    assert sasrec["checkpoint_dir"] == str(tmp_path / "run" / "saved")
    assert (sasrec["epochs"], sasrec["stopping_step"], sasrec["seed"]) == (7, 8, 3)  # a fixed budget
    assert (sasrec["MAX_ITEM_LIST_LENGTH"], sasrec["train_batch_size"], sasrec["learning_rate"]) == (50, 2048, 1e-3)
    assert sasrec["hidden_size"] == 64 and "embedding_size" not in sasrec
    assert sasrec["eval_args"] == {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full", "group_by": "user"}
    assert (sasrec["loss_type"], sasrec["valid_metric"], sasrec["topk"]) == ("CE", "NDCG@10", [10])
    assert "item" not in sasrec["load_col"]

    gru4recf = ref.recbole_config("GRU4RecF", 10, 0, tmp_path, tmp_path)
    assert gru4recf["load_col"]["item"] == ["item_id", "class"] and gru4recf["embedding_size"] == 64

    din = ref.recbole_config("DIN", 10, 0, tmp_path, tmp_path)
    assert din["threshold"] == {"rating": 4} and din["load_col"]["item"] == ["item_id"]
    assert din["eval_args"]["split"] == {"RS": [0.8, 0.1, 0.1]} and din["eval_args"]["group_by"] is None
    assert (din["metrics"], din["valid_metric"]) == (["AUC", "LogLoss"], "AUC") and "loss_type" not in din


def test_recbole_config_refuses_an_unknown_model_and_a_budget_below_one(tmp_path):
    with pytest.raises(ValueError, match="unknown RecBole model 'BERT4Rec'; choose among GRU4Rec, DIN"):
        ref.recbole_config("BERT4Rec", 10, 0, tmp_path, tmp_path)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="epochs must be a whole number >= 1"):
            ref.recbole_config("GRU4Rec", bad, 0, tmp_path, tmp_path)


def test_recbole_setup_pins_the_reference_release(tmp_path):
    command = ref.recbole_setup_command(tmp_path / "venv")
    assert command.startswith(f"python3 -m venv {tmp_path / 'venv'} && {tmp_path / 'venv'}/bin/pip install")
    assert "recbole==1.2.1" in command


# -- the records of a RecBole run -------------------------------------------------------------


def test_recbole_metric_names_become_ours():
    raw = {"hit@10": 0.1, "ndcg@10": 0.05, "mrr@10": 0.03, "auc": 0.8, "logloss": 0.5, "precision@5": 0.2}
    assert [ref.metric_name(k) for k in raw] == ["HR@10", "NDCG@10", "MRR@10", "AUC", "LogLoss", "precision@5"]


def test_epoch_records_count_time_and_pick_the_first_best_epoch():
    start = {"side": "recbole", "model": "GRU4Rec", "status": "running"}
    progress = ref.epoch_progress(start, [30.0, 40.0], [0.1, 0.3], 75.0)
    assert progress == {**start, "epochs": 2, "seconds_per_epoch": 35.0, "epoch_seconds": [30.0, 40.0],
                        "valid_curve": [0.1, 0.3], "elapsed_seconds": 75.0}
    done = ref.finished_record(progress, [30.0, 40.0, 50.0], [0.1, 0.3, 0.3], 130.0,
                               {"hit@10": 0.2, "ndcg@10": 0.1}, stopped_at_cap=False)
    assert (done["status"], done["epochs"], done["seconds_per_epoch"]) == ("done", 3, 40.0)
    assert (done["best_epoch"], done["train_seconds"], done["total_seconds"]) == (2, 120.0, 130.0)
    assert done["test"] == {"HR@10": 0.2, "NDCG@10": 0.1}
    capped = ref.finished_record(progress, [30.0], [0.1], 31.0, {"auc": 0.7}, stopped_at_cap=True)
    assert capped["status"] == "stopped at the time cap" and capped["best_epoch"] == 1
    with pytest.raises(ValueError, match="one validation figure per timed epoch is needed, got 2 epoch"):
        ref.epoch_progress(start, [1.0, 2.0], [0.1], 3.0)


def test_finished_record_rebuilds_a_cached_recbole_record_exactly():
    # the record the earlier script wrote for RecBole's GRU4Rec, rebuilt from its own per-epoch figures
    cached = json.loads((REPO / "docs" / "results" / "recbole" / "GRU4Rec.json").read_text())
    running = {k: cached[k] for k in ("side", "recbole_version", "model", "task", "dataset", "seed", "epoch_budget",
                                      "status", "n_users", "n_items", "n_interactions", "setup_seconds")}
    running["status"] = "running"
    progress = ref.epoch_progress(running, cached["epoch_seconds"], cached["valid_curve"], cached["elapsed_seconds"])
    raw_test = {"hit@10": cached["test"]["HR@10"], "ndcg@10": cached["test"]["NDCG@10"],
                "mrr@10": cached["test"]["MRR@10"]}
    rebuilt = ref.finished_record(progress, cached["epoch_seconds"], cached["valid_curve"], cached["total_seconds"],
                                  raw_test, stopped_at_cap=False)
    assert json.dumps(rebuilt) == json.dumps(cached)  # same fields, same order, same figures


# -- the parent <-> child protocol -------------------------------------------------------------


def test_record_lines_carry_records_and_leave_recbole_output_alone():
    record = {"model": "DIN", "epochs": 2, "test": {"AUC": 0.75}}
    line = ref.record_line(record)
    assert "\n" not in line and ref.parse_record_line(line) == record
    log = "Tue 08 Dec 2026 03:00:00 INFO  epoch 0 training [time: 36.91s, train loss: 5612.3456]"
    assert ref.parse_record_line(log) is None


def test_run_child_hands_over_each_record_and_echoes_the_rest(capsys):
    child = (
        "import json\n"
        f"print({ref.RECORD_MARKER!r} + json.dumps({{'epochs': 1}}), flush=True)\n"
        "print('epoch 0 evaluating [time: 1.20s, valid_score: 0.031200]', flush=True)\n"
        f"print({ref.RECORD_MARKER!r} + json.dumps({{'epochs': 2, 'status': 'done'}}), flush=True)\n"
        "raise SystemExit(3)\n")
    records = []
    status = ref.run_child([sys.executable, "-c", child], records.append, env={})
    assert status == 3
    assert records == [{"epochs": 1}, {"epochs": 2, "status": "done"}]
    out = capsys.readouterr().out
    assert "valid_score: 0.031200" in out and ref.RECORD_MARKER not in out


def test_recboles_side_runs_under_an_interpreter_without_recgym(tmp_path):
    # -I -S: no site-packages, no PYTHONPATH, as under RecBole's own interpreter nothing of recgym's is there
    file = str(Path(ref.__file__).resolve())
    shown = subprocess.run([sys.executable, "-I", "-S", file, "one", "--help"], capture_output=True, text=True,
                           cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "--epochs" in shown.stdout and "--workdir" in shown.stdout
    refused = subprocess.run([sys.executable, "-I", "-S", file, "one", "BERT4Rec", "--epochs", "1", "--workdir",
                              str(tmp_path)], capture_output=True, text=True, cwd=tmp_path)
    assert refused.returncode == 2 and "invalid choice: 'BERT4Rec'" in refused.stderr
    assert ref.child_command(Path("/venv/bin/python"), "one", "DIN") == ["/venv/bin/python", file, "one", "DIN"]
    env = ref.child_environment(1)
    assert (env["OMP_NUM_THREADS"], env["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"]) == ("1", "1")


# -- the timing conditions ---------------------------------------------------------------------


def test_conditions_record_load_average_niceness_and_threads(monkeypatch):
    loads = iter([0.4, 1.7])
    monkeypatch.setattr(ref.os, "getloadavg", lambda: (next(loads), 0.0, 0.0))
    monkeypatch.setattr(ref.os, "nice", lambda increment: 0)
    start = ref.conditions_at_start(1)
    assert start == {"threads": 1, "niceness": 0, "load_average_start": 0.4}
    end = ref.conditions_at_end(start)
    assert end == {**start, "load_average_end": 1.7}
    assert ref.timing_warnings(end) == []  # only the start decides: a run makes its own load
    with pytest.raises(ValueError, match="threads must be a whole number >= 1, got 0"):
        ref.conditions_at_start(0)
    with pytest.raises(ValueError, match="needs the record of conditions_at_start"):
        ref.conditions_at_end({"threads": 1})


def test_a_recbole_record_carries_the_start_conditions_and_the_end_load_once_finished(monkeypatch):
    monkeypatch.setattr(ref.os, "getloadavg", lambda: (0.7, 0.0, 0.0))
    start = {"threads": 1, "niceness": 0, "load_average_start": 0.2}
    running = ref.with_conditions({"model": "DIN", "status": "running", "epochs": 1}, start)
    assert running == {"model": "DIN", "status": "running", "epochs": 1, **start}
    for status in ref.FINISHED:
        finished = ref.with_conditions({"model": "DIN", "status": status}, start)
        assert finished == {"model": "DIN", "status": status, **start, "load_average_end": 0.7}


def test_a_busy_start_or_nice_is_flagged():
    assert ref.timing_warnings({"load_average_start": 1.0, "niceness": 0}) == []  # the limit itself is quiet
    assert ref.timing_warnings({"load_average_start": 1.26, "niceness": 0}) == [
        "load average 1.26 at the start (above 1): the machine was busy"]
    assert ref.timing_warnings({"load_average_start": 0.2, "niceness": 19}) == ["ran under nice 19"]
    assert ref.timing_warnings({"load_average_start": None}) == ["no load average recorded at the start"]
    assert ref.timing_warnings({"load_average_start": 0.6}, limit=0.5) == [
        "load average 0.60 at the start (above 0.5): the machine was busy"]
    with pytest.raises(ValueError, match="limit must be >= 0"):
        ref.timing_warnings({"load_average_start": 0.6}, limit=-1)
    assert ref.thread_mismatch([{"threads": 1}, {"threads": 1}]) is None
    assert ref.thread_mismatch([{"threads": 1}, {"threads": 4}]) == (
        "the runs compared state different thread counts: 1, 4")
    assert ref.thread_mismatch([{"threads": 1}, {}]) == "the runs compared state different thread counts: 1, None"


# -- the report --------------------------------------------------------------------------------


def _write(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


def _ours(name: str, label: str, seed: int, ndcg: float, epochs: int = 2, **extra) -> dict:
    return {"task": "next-item", "status": "done", "epochs": epochs, "best_epoch": epochs, "epoch_budget": 2,
            "seconds_per_epoch": 4.0, "total_seconds": 20.0 + 2 * seed,
            "test": {"HR@10": 2 * ndcg, "NDCG@10": ndcg, "MRR@10": ndcg / 2}, **extra}


@pytest.fixture
def caches(tmp_path):
    recbole, ours = tmp_path / "recbole", tmp_path / "recbole" / "ours"
    _write(recbole / "GRU4Rec.json", {"task": "next-item", "status": "done", "epochs": 2, "best_epoch": 2,
                                      "seconds_per_epoch": 40.0, "total_seconds": 85.0,
                                      "test": {"HR@10": 0.2, "NDCG@10": 0.1, "MRR@10": 0.05}})
    _write(recbole / "SASRec.json", {"task": "next-item", "status": "running", "epochs": 1,
                                     "seconds_per_epoch": 200.0, "elapsed_seconds": 230.0})
    _write(ours / "gru4rec-budget-seed0.json", _ours("gru4rec", "budget", 0, 0.08))
    _write(ours / "gru4rec-budget-seed1.json", _ours("gru4rec", "budget", 1, 0.09))
    _write(ours / "gru4rec-converged-seed0.json", _ours("gru4rec", "converged", 0, 0.12, epochs=9, best_epoch=4))
    _write(ours / "gru4rec-budget-seed2.json", {"status": "running"})  # not done: left out
    return recbole, ours, recbole / "speed.json"


def test_report_rows_ratios_and_shortfalls_from_hand_made_records(caches):
    recbole, ours, speed = caches
    text = report_markdown(recbole, ours, speed, registered=["gru4rec", "sasrec"])
    assert "| RecBole GRU4Rec | 2/10; still improving | 0.2000 | 0.1000 | 0.0500 | 1 | 1 | 40 | 85 |" in text
    # ratio: mean NDCG@10 0.085 / 0.1; × faster withheld: no run recorded its load average
    assert ("| recgym gru4rec (2 seeds) | 2 | 0.1700 ± 0.0141 | 0.0850 ± 0.0071 | 0.0425 ± 0.0035 | 0.85 | withheld"
            " | 4.0 | 21 |") in text
    assert "| recgym gru4rec (1 seed) | 9 (early stopping; best 4) | 0.2400 | 0.1200 | 0.0600 | - | - | 4.0 | 20 |" in text
    assert "| RecBole SASRec | 1/10 (running, no test yet) | - | - | - | 1 | 1 | 200 | 230 |" in text
    assert "| recgym sasrec | not run yet |" in text and "| recgym tisasrec | not in state_encoders yet |" in text
    assert "| RecBole DIN | not run yet |" in text
    assert ("- `gru4rec`: 0.850 × RecBole's GRU4Rec after 2 epoch(s), the budget RecBole's 30-minute cap left."
            " RecBole's run was still improving, and so were all of ours. Trained to convergence, ours reach NDCG@10"
            " 0.1200 (best epoch 4, 1 seed(s)), 1.20 × RecBole's figure at its budget.") in text
    assert "## TiSASRec against our SASRec\n\n- Not run yet." in text
    assert "## Training speed" not in text and "## Timing conditions" not in text


def test_report_flags_runs_that_started_busy_and_reads_older_speed_pairs(caches):
    recbole, ours, speed = caches
    side = {"seconds_per_epoch": 10.0, "model": "GRU4Rec"}
    _write(speed, {"batches": 4, "pairs": {
        "gru4rec": {"recbole": {**side, "threads": 1}, "recgym": {**side, "seconds_per_epoch": 2.0, "threads": 2},
                    "threads": 1, "niceness": 0, "load_average_start": 1.5, "load_average_end": 1.1},
        "sasrec": {"recbole": side, "recgym": side, "load_average_before": 0.3, "load_average_after": 0.5}}})
    _write(ours / "gru4rec-budget-seed1.json", _ours("gru4rec", "budget", 1, 0.09, load_average_start=0.2,
                                                     load_average_end=0.9, niceness=19, threads=1))
    text = report_markdown(recbole, ours, speed, registered=["gru4rec"])
    # 10 / 2 = 5.0 per epoch, but withheld: the pair started at load 1.5 and states two thread counts
    assert "| `gru4rec` | GRU4Rec | 2.0 | 10 | withheld | 1.5 |" in text
    # cached before start/end were recorded: its load is read from the old field; no thread count stated
    assert "| `sasrec` | GRU4Rec | 10 | 10 | withheld | 0.3 |" in text
    assert timing_lines(recbole, ours, speed) == [
        "- speed pair `gru4rec`: the runs compared state different thread counts: 2, 1.",
        "- recgym gru4rec-budget-seed1: ran under nice 19.",
        "- speed pair `gru4rec`: load average 1.50 at the start (above 1): the machine was busy.",
    ]
    assert "## Timing conditions\n\n- speed pair `gru4rec`: the runs compared" in text


def test_encoder_table_gets_the_budget_score_of_each_encoder_with_records(caches):
    _, ours, _ = caches
    table = ("# Encoders\n\n| encoder | what | supervised scores |\n|---|---|---|\n"
             "| `gru4rec` | GRU | old |\n| `sasrec` | attention | - |\n")
    assert encoder_table_with_scores(table, ours) == (
        "# Encoders\n\n| encoder | what | supervised scores |\n|---|---|---|\n"
        "| `gru4rec` | GRU | NDCG@10 0.0850 ± 0.0071 (ML-100K next item, 2 epochs, 2 seeds; docs/results/ubm.md) |\n"
        "| `sasrec` | attention | - |\n")


def test_the_committed_report_is_what_the_cached_records_give():
    import state_encoders

    results = REPO / "docs" / "results"
    text = report_markdown(results / "recbole", results / "recbole" / "ours", results / "recbole" / "speed.json",
                           state_encoders.available())
    assert text == (results / "ubm.md").read_text(), "rerun: python scripts/compare_recbole.py report"


def test_our_sequential_encoders_train_on_every_position_with_as_many_labels_a_step():
    from recgym.pretrain.recbole_ours import our_task_and_batch

    task, batch = our_task_and_batch("gru4rec")
    assert (task.window_stride, batch) == (49, 2048 // 50)  # windows of 50 sharing one item: ~2,048 labels a step
    task, batch = our_task_and_batch("din")
    assert (task.monitor, batch) == ("AUC", 2048)
    task, batch = our_task_and_batch("sasrec")  # RecBole's scoring s . e_j (issue 22: scripts/sasrec_gap.py)
    assert (task.window_stride, task.project, batch) == (49, False, 2048 // 50)
    with pytest.raises(ValueError, match="no RecBole counterpart for 'bert4rec'; choose among mean, gru4rec"):
        our_task_and_batch("bert4rec")


# -- RecBole's side, end to end on a stand-in for RecBole's API --------------------------------

_STAND_IN = {
    "__init__.py": '__version__ = "1.2.1"\n',
    "config.py": '''
import json


class Config(dict):
    def __init__(self, model, config_dict):
        super().__init__(config_dict, model=model, MODEL_TYPE="sequential")
        with open("config_seen.json", "w") as f:  # the child runs in its work folder
            json.dump(config_dict, f)
''',
    "data.py": '''
class _Dataset:
    user_num, item_num, inter_num = 4, 7, 12


class _Loader(list):
    _dataset = _Dataset()


def create_dataset(config):
    return _Dataset()


def data_preparation(config, dataset):
    return _Loader(range(5)), _Loader(range(2)), _Loader(range(2))
''',
    "utils.py": '''
import sys

import torch

VALID = [0.1, 0.3, 0.2]


class _Model:
    def __init__(self, config, dataset):
        self.weight = torch.ones(1, requires_grad=True)

    def to(self, device):
        return self

    def train(self):
        return self

    def calculate_loss(self, batch):
        return (self.weight * 1.5).sum()


class _Optimizer:
    def zero_grad(self):
        pass

    def step(self):
        pass


class _Trainer:
    def __init__(self, config, model):
        self.config, self.optimizer = config, _Optimizer()

    def _train_epoch(self, train_data, epoch_idx):
        return 1.0

    def fit(self, train_data, valid_data, saved, show_progress, callback_fn):
        assert not [m for m in sys.modules if m == "recgym" or m.startswith("recgym.")], "the child imported recgym"
        for epoch in range(self.config["epochs"]):
            self._train_epoch(train_data, epoch)
            callback_fn(epoch, VALID[epoch])

    def evaluate(self, test_data, load_best_model, show_progress):
        return {"hit@10": 0.2, "ndcg@10": 0.1, "mrr@10": 0.05}


def get_model(name):
    return _Model


def get_trainer(model_type, name):
    return _Trainer


def init_logger(config):
    pass


def init_seed(seed, reproducibility):
    pass
''',
}


def test_recboles_side_trains_tests_and_reports_through_the_child(tmp_path):
    for name, text in _STAND_IN.items():
        (tmp_path / "fake" / "recbole").mkdir(parents=True, exist_ok=True)
        (tmp_path / "fake" / "recbole" / name).write_text(text)
    python = Path(sys.executable)
    env = {**ref.child_environment(1), "PYTHONPATH": str(tmp_path / "fake")}
    workdir = tmp_path / "run" / "GRU4Rec"
    records = []
    status = ref.run_child(ref.child_command(python, "one", "GRU4Rec", "--epochs", "3", "--seed", "4", "--workdir",
                                             str(workdir)), records.append, env)
    assert status == 0
    assert [r["status"] for r in records] == ["running", "running", "running", "done"]
    assert [r["valid_curve"] for r in records[:3]] == [[0.1], [0.1, 0.3], [0.1, 0.3, 0.2]]
    final = records[-1]
    assert (final["epochs"], final["best_epoch"], final["seed"], final["epoch_budget"]) == (3, 2, 4, 3)
    assert (final["n_users"], final["n_items"], final["n_interactions"]) == (3, 6, 12)
    assert final["test"] == {"HR@10": 0.2, "NDCG@10": 0.1, "MRR@10": 0.05}
    assert len(final["epoch_seconds"]) == 3 and final["train_seconds"] == pytest.approx(sum(final["epoch_seconds"]))
    seen = json.loads((workdir / "config_seen.json").read_text())
    assert seen == json.loads(json.dumps(ref.recbole_config("GRU4Rec", 3, 4, workdir, Path(seen["data_path"]))))
    assert seen["data_path"] == str(tmp_path / "fake" / "recbole" / "dataset_example")

    speed = []
    status = ref.run_child(ref.child_command(python, "speed", "GRU4Rec", "--batches", "2", "--workdir",
                                             str(workdir), "--batch-size", "64"), speed.append, env)
    assert status == 0 and len(speed) == 1
    assert {k: speed[0][k] for k in ("side", "model", "device", "batch_size", "batches_timed", "batches_per_epoch",
                                     "threads")} == {"side": "recbole", "model": "GRU4Rec", "device": "cpu",
                                                     "batch_size": 64, "batches_timed": 2, "batches_per_epoch": 5,
                                                     "threads": 1}
    assert speed[0]["seconds_per_epoch"] == pytest.approx(5 * speed[0]["seconds_per_batch"])


def test_a_speed_ratio_is_shown_only_when_every_run_was_timed_quietly():
    from recgym.pretrain.recbole_report import quiet_speedup

    quiet = {"load_average_start": 0.4, "niceness": 0}
    assert quiet_speedup(100.0, 4.0, [quiet, quiet]) == "25.0"
    assert quiet_speedup(100.0, 4.0, [quiet, {"load_average_start": 3.9, "niceness": 0}]) == "withheld"
    assert quiet_speedup(100.0, 4.0, [quiet, {"load_average_start": 0.2, "niceness": 19}]) == "withheld"
    assert quiet_speedup(100.0, 4.0, [quiet, {}]) == "withheld"  # no load average recorded: not a claim
    assert quiet_speedup(100.0, 4.0, [quiet], [{"threads": 1}, {"threads": 1}]) == "25.0"
    assert quiet_speedup(100.0, 4.0, [quiet], [{"threads": 1}, {"threads": 2}]) == "withheld"
