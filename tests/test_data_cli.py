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
    assert lines["ml-1m"].split()[1:4] == ["6,040*", "3,706*", "1,000,209*"]
    assert f"no: looks for ratings.dat, movies.dat, users.dat (or the official archives) in {data_dir / 'ml-1m'}" \
        in lines["ml-1m"]
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


def test_staged_jester_dataset1_sample_is_found_and_loaded(data_dir, capsys):
    sample = data_dir / "jester" / "jester5k-recommenderlab" / "jester5k-dataset1-layout.csv"
    if not sample.is_file() or (data_dir / "jester" / "dataset1").is_dir():
        pytest.skip("the staged data has no Jester5k sample, or has the full Dataset 1")
    assert main(["datasets", "--data-dir", str(data_dir)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("jester "))
    assert line.split()[1:4] == ["5,000", "100", "363,209"]
    assert f"sample: {sample} (load it with path=; the full dataset's jester-data-1.xls" in line
    assert main(["datasets", "--json", "--data-dir", str(data_dir)]) == 0
    row = next(r for r in json.loads(capsys.readouterr().out) if r["name"] == "jester")
    assert (row["available"], row["sample"], row["location"], row["counts_source"]) == (
        True, True, str(sample), "loaded")


def _jester_layout_csv(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("2,1.5,-3.25,99\n1,99,99,7\n")
    return path


def test_a_jester_sample_in_a_subfolder_is_listed_and_the_missing_files_named(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["datasets", "--no-load", "--data-dir", str(empty)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("jester "))
    assert ("no: looks for jester-data-1.xls, jester-data-2.xls, jester-data-3.xls (or the official archives or "
            f"the sample jester5k-dataset1-layout.csv) in {empty / 'jester' / 'dataset1'}, {empty / 'jester'}") in line

    sample = _jester_layout_csv(tmp_path / "data" / "jester" / "my-copy" / "jester5k-dataset1-layout.csv")
    assert main(["datasets", "--json", "--no-load", "--data-dir", str(tmp_path / "data")]) == 0
    row = next(r for r in json.loads(capsys.readouterr().out) if r["name"] == "jester")
    assert (row["available"], row["sample"], row["location"]) == (True, True, str(sample))
    assert row["looks_for"] == ["jester-data-1.xls", "jester-data-2.xls", "jester-data-3.xls"]


def test_loading_jester_without_its_sheets_points_at_a_sample_found_beside_them(tmp_path):
    from recgym.data import DatasetNotFoundError, load

    sample = _jester_layout_csv(tmp_path / "jester" / "jester5k-recommenderlab" / "jester5k-dataset1-layout.csv")
    with pytest.raises(DatasetNotFoundError) as err:
        load("jester", data_dir=tmp_path, download=False)
    assert f"A sample in the official layout was found: {sample}; load it with load('jester', path='{sample}')" \
        in str(err.value)


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
