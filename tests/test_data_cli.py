"""`recgym datasets` (table, --json) and `recgym datasets fetch`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recgym.cli import main
from recgym.data import DATASETS
from tests.test_data_support import isolated_cache, make_ml100k_zip  # noqa: F401


def test_table_lists_every_dataset(data_dir, capsys):
    assert main(["datasets", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    for name in DATASETS:
        assert name in lines
    assert lines["name"].split() == ["name", "users", "items", "ratings", "density", "scale", "available"]
    ml100k = lines["ml-100k"].split()
    assert ml100k[1:6] == ["943", "1,682", "100,000", "6.30%", "1..5"]
    assert f"yes: {data_dir / 'ml-100k'}" in lines["ml-100k"]
    assert "7,699" in lines["jester-4"] and "-10..10" in lines["jester-4"]
    # not available: official counts, marked
    assert lines["ml-1m"].split()[1:4] == ["6,040*", "3,706*", "1,000,209*"] and lines["ml-1m"].endswith("no")
    assert lines["yahoo-r3"].split()[1:4] == ["15,400*", "1,000*", "311,704*"]


def test_json_output(data_dir, capsys):
    assert main(["datasets", "--json", "--data-dir", str(data_dir)]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == set(DATASETS)
    assert rows["ml-100k"]["counts_source"] == "loaded" and rows["ml-100k"]["ratings"] == 100_000
    assert rows["ml-100k"]["location"] == str(data_dir / "ml-100k")
    assert rows["ml-1m"]["available"] is False and rows["ml-1m"]["ratings"] == 1_000_209
    assert rows["ml-1m"]["counts_source"] == "official"
    assert rows["jester-4"]["ratings"] == 106_489 and rows["jester-4"]["scale"] == [-10.0, 10.0]


def test_no_load_shows_official_counts(data_dir, capsys):
    assert main(["datasets", "--json", "--no-load", "--data-dir", str(data_dir)]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["ml-100k"]["counts_source"] == "official" and rows["ml-100k"]["available"] is True


def test_fetch_downloads_into_cache(data_dir, tmp_path, monkeypatch, capsys):
    import pooch

    def retrieve(url, known_hash=None, fname=None, path=None, progressbar=False):
        Path(path).mkdir(parents=True, exist_ok=True)
        return str(make_ml100k_zip(data_dir, Path(path) / fname))

    monkeypatch.setattr(pooch, "retrieve", retrieve)
    monkeypatch.setenv("RECGYM_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["datasets", "fetch", "ml-100k", "--data-dir", str(tmp_path / "empty")]) == 0
    out = capsys.readouterr().out
    assert f"verified files in {tmp_path / 'cache' / 'ml-100k'}" in out


def test_fetch_yahoo_explains_manual_download(tmp_path, capsys):
    assert main(["datasets", "fetch", "yahoo-r3", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "recgym: error:" in err and "Webscope" in err


def test_fetch_unknown_name_is_rejected(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["datasets", "fetch", "netflix"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
