"""Finding, extracting, downloading (mocked: no network in tests) and verifying dataset files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests

from recgym.data import (
    DATASETS,
    ChecksumError,
    DatasetNotFoundError,
    MalformedFileError,
    available_datasets,
    load,
    locate,
)
from recgym.data import checksums
from recgym.data import sources as src
from recgym.data.checksums import cached_digest, file_digest
from tests.test_data_support import (  # noqa: F401  (fixtures)
    ML100K_REQUIRED,
    copy_files,
    isolated_cache,
    make_ml100k_zip,
    no_download,
    write_lines,
)

STAGED = {
    "ml-100k": src.ML100K_FILES,
    "ml-1m": tuple(f for f in src.ML1M_FILES if f.name != "ratings.dat"),
    "jester/dataset4": src.JESTER4_FILES,
    "jester/jester5k-recommenderlab": src.JESTER1_FILES[-2:],
}


def test_registered_digests_are_well_formed():
    for info in DATASETS.values():
        for spec in info.files:
            assert spec.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", spec.sha256), spec
            assert spec.git_blob is None or re.fullmatch(r"[0-9a-f]{40}", spec.git_blob), spec
        for archive in info.archives:
            assert archive.known_hash is None or re.fullmatch(r"(sha256:[0-9a-f]{64}|md5:[0-9a-f]{32})",
                                                              archive.known_hash)
    assert src.ML100K_ARCHIVES[0].known_hash == f"sha256:{src.ML100K_ARCHIVE_SHA256}"
    assert src.ML100K_ARCHIVES[0].urls == ("https://files.grouplens.org/datasets/movielens/ml-100k.zip",)


@pytest.mark.parametrize("folder", sorted(STAGED))
def test_staged_files_match_registered_checksums(data_dir, folder, tmp_path):
    for spec in STAGED[folder]:
        path = data_dir / folder / spec.name
        assert path.stat().st_size == spec.size
        assert file_digest(path, "sha256") == spec.sha256
        if spec.git_blob:  # git hash-object of the same bytes
            assert file_digest(path, "git-blob") == spec.git_blob


def test_git_blob_of_small_bytes(tmp_path):
    path = tmp_path / "hello"
    path.write_bytes(b"hello\n")
    assert file_digest(path, "git-blob") == "ce013625030ba8dba906f756967f9e9ca394464a"  # git hash-object


def test_digest_memo_avoids_rehashing(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 1000)
    calls = []
    real = checksums.file_digest
    monkeypatch.setattr(checksums, "file_digest", lambda p, a="sha256": calls.append(a) or real(p, a))
    first = cached_digest(path, "sha256", tmp_path / "cache")
    assert cached_digest(path, "sha256", tmp_path / "cache") == first and len(calls) == 1
    path.write_bytes(b"y" * 1001)  # changed size/mtime: hashed again
    assert cached_digest(path, "sha256", tmp_path / "cache") != first and len(calls) == 2


def test_checksum_mismatch_refuses_corrupted_copy(data_dir, tmp_path, no_download):
    folder = copy_files(data_dir / "ml-100k", tmp_path / "ml-100k")
    data = bytearray((folder / "u.data").read_bytes())
    data[100] = ord("9") if data[100] != ord("9") else ord("8")
    (folder / "u.data").write_bytes(bytes(data))
    with pytest.raises(ChecksumError) as err:
        load("ml-100k", data_dir=tmp_path)
    message = str(err.value)
    assert "u.data" in message and src.ML100K_FILES[1].sha256 in message
    assert err.value.actual in message and err.value.actual != err.value.expected
    assert "refused" in message


def test_files_directly_in_data_dir_and_env_var(data_dir, tmp_path, monkeypatch, no_download):
    copy_files(data_dir / "ml-100k", tmp_path)  # no ml-100k/ sub-folder
    log = load("ml-100k", data_dir=tmp_path)
    assert len(log) == 100_000 and log.meta["source_dir"] == str(tmp_path)
    monkeypatch.setenv("RECGYM_DATA_DIR", str(tmp_path))
    assert len(load("ml-100k")) == 100_000
    assert locate(DATASETS["ml-100k"]) == tmp_path
    assert "ml-100k" in available_datasets(local_only=True)


@pytest.mark.parametrize(
    "line, fragment",
    [
        ("196\t242\t3", "expected 4 fields"),
        ("196\t242\t3\t881250949\t7", "expected 4 fields"),
        ("196\tabc\t3\t881250949", "field 'item' is not a number: 'abc'"),
        ("196\t242\t6\t881250949", "rating 6 is not one of"),
        ("196\t242\t3.5\t881250949", "field 'rating' must be an integer"),
        ("196\t\t3\t881250949", "field 'item' is empty"),
    ],
)
def test_malformed_line_names_file_and_line(data_dir, tmp_path, line, fragment, no_download):
    folder = copy_files(data_dir / "ml-100k", tmp_path / "ml-100k")
    lines = (folder / "u.data").read_text().splitlines()
    lines.insert(4, line)  # becomes line 5
    write_lines(folder / "u.data", lines)
    with pytest.raises(MalformedFileError) as err:
        load("ml-100k", data_dir=tmp_path, verify=False)
    assert err.value.line == 5
    assert f"{folder / 'u.data'}, line 5" in str(err.value)
    assert fragment in str(err.value)


def test_blank_lines_are_skipped_and_counted(data_dir, tmp_path, no_download):
    folder = copy_files(data_dir / "ml-100k", tmp_path / "ml-100k")
    lines = (folder / "u.data").read_text().splitlines()
    write_lines(folder / "u.data", lines[:3] + [""] + lines[3:5] + ["1\t1\t0\t1"])
    with pytest.raises(MalformedFileError, match=r"line 7: rating 0"):
        load("ml-100k", data_dir=tmp_path, verify=False)


def test_missing_file_names_file_dirs_url_and_env(tmp_path, no_download):
    (tmp_path / "ml-100k").mkdir()
    (tmp_path / "ml-100k" / "u.data").write_text("1\t1\t1\t1\n")
    with pytest.raises(DatasetNotFoundError) as err:
        load("ml-100k", data_dir=tmp_path, download=False)
    message = str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    for part in ("u.item", "u.user", "u.genre", str(tmp_path / "ml-100k"), src.ML100K_URL, "RECGYM_DATA_DIR",
                 "recgym datasets fetch ml-100k"):
        assert part in message
    assert "u.data," not in message  # only the missing files are named


def _fake_retrieve(data_dir, calls):
    def retrieve(url, known_hash=None, fname=None, path=None, progressbar=False, **kwargs):
        calls.append({"url": url, "known_hash": known_hash, "fname": fname, "progressbar": progressbar})
        Path(path).mkdir(parents=True, exist_ok=True)
        return str(make_ml100k_zip(data_dir, Path(path) / fname))

    return retrieve


def test_download_path_uses_pooch_with_known_hash(data_dir, tmp_path, monkeypatch):
    import pooch

    calls = []
    monkeypatch.setattr(pooch, "retrieve", _fake_retrieve(data_dir, calls))
    cache = tmp_path / "cache"
    log = load("ml-100k", data_dir=tmp_path / "empty", cache_dir=cache)
    assert len(log) == 100_000
    assert calls == [{"url": src.ML100K_URL, "known_hash": f"sha256:{src.ML100K_ARCHIVE_SHA256}",
                      "fname": "ml-100k.zip", "progressbar": True}]
    assert all((cache / "ml-100k" / name).is_file() for name in ML100K_REQUIRED)
    load("ml-100k", data_dir=tmp_path / "empty", cache_dir=cache, use_cache=False)
    assert len(calls) == 1  # found in the cache, not downloaded again


def test_offline_download_says_how_to_supply(tmp_path, monkeypatch):
    import pooch

    def offline(*args, **kwargs):
        raise requests.exceptions.ConnectionError("Failed to resolve 'files.grouplens.org'")

    monkeypatch.setattr(pooch, "retrieve", offline)
    with pytest.raises(DatasetNotFoundError) as err:
        load("ml-100k", data_dir=tmp_path, cache_dir=tmp_path / "cache")
    message = str(err.value)
    for part in ("download failed", "offline", "Failed to resolve", src.ML100K_URL, "RECGYM_DATA_DIR",
                 "<data_dir>/ml-100k/"):
        assert part in message


def test_download_hash_mismatch_is_a_checksum_error(tmp_path, monkeypatch):
    import pooch

    actual = "0" * 64

    def bad_hash(url, known_hash=None, **kwargs):
        raise ValueError(f"SHA256 hash of downloaded file (ml-100k.zip) does not match the known hash: "
                         f"expected {known_hash.split(':')[1]}, got {actual}. The file may have been corrupted.")

    monkeypatch.setattr(pooch, "retrieve", bad_hash)
    with pytest.raises(ChecksumError) as err:
        load("ml-100k", data_dir=tmp_path, cache_dir=tmp_path / "cache")
    assert err.value.expected == src.ML100K_ARCHIVE_SHA256 and err.value.actual == actual


def test_archive_in_data_dir_is_verified_then_extracted(data_dir, tmp_path, no_download):
    make_ml100k_zip(data_dir, tmp_path / "ml-100k.zip")
    # not the official archive bytes: refused ...
    with pytest.raises(ChecksumError, match=src.ML100K_ARCHIVE_SHA256):
        load("ml-100k", data_dir=tmp_path, cache_dir=tmp_path / "cache")
    # ... unless verification is off; the extracted files are still the official ones
    log = load("ml-100k", data_dir=tmp_path, cache_dir=tmp_path / "cache", verify=False)
    assert len(log) == 100_000
    assert log.meta["source_dir"] == str(tmp_path / "cache" / "ml-100k")
    # path= may name the archive itself
    assert len(load("ml-100k", path=tmp_path / "ml-100k.zip", cache_dir=tmp_path / "c2", verify=False)) == 100_000


def test_path_that_does_not_exist(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        load("ml-100k", path=tmp_path / "nope")


def test_download_false_never_calls_pooch(tmp_path, no_download):
    with pytest.raises(DatasetNotFoundError, match=r"download=False"):
        load("jester-4", data_dir=tmp_path, download=False)

