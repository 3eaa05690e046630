"""Hostile input to the data layer (issue 9): bad input is refused with a message saying what and how to fix."""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from recgym.cli import main
from recgym.data import (
    ChecksumError,
    DatasetNotFoundError,
    DataWarning,
    MalformedFileError,
    RatingLog,
    RatingScale,
    build_rating_log,
    from_dataframe,
    load,
    load_csv,
)
from recgym.data import sources as src
from recgym.data.custom import MAX_RATING_MAGNITUDE
from tests.test_data_support import (  # noqa: F401  (fixtures)
    ML100K_REQUIRED,
    copy_files,
    isolated_cache,
    no_download,
    write_lines,
)


def _ratings(**columns) -> pd.DataFrame:
    base = {"user": [1, 2, 3], "item": [1, 1, 2], "rating": [1.0, 2.0, 5.0]}
    return pd.DataFrame({**base, **columns})


def _ml100k_copy(data_dir: Path, tmp_path: Path) -> Path:
    return copy_files(data_dir / "ml-100k", tmp_path / "data" / "ml-100k")


# -- D5: ratings that do not fit float32 -----------------------------------------------
@pytest.mark.parametrize("huge", [1e308, -1e300, 3e38, 2e19, 2.0**24 + 1])
def test_from_dataframe_refuses_ratings_too_large_for_float32(huge):
    with pytest.raises(ValueError, match=r"custom: rating column 'rating', row 2 holds .* too large") as err:
        from_dataframe(_ratings(rating=[1.0, 2.0, huge]))
    assert "rescale" in str(err.value)


@pytest.mark.parametrize("low, high", [(-3e38, 3e38), (0.0, 1e30), (-2e7, 0.0), (-1e7, 1e7)])
def test_from_dataframe_refuses_a_scale_beyond_float32(low, high):
    with pytest.raises(ValueError, match=r"custom: rating scale .* does not fit float32") as err:
        from_dataframe(_ratings(), scale=RatingScale(low, high))
    assert "scale=" in str(err.value)


def test_from_dataframe_refuses_a_scale_too_narrow_for_float32():
    with pytest.raises(ValueError, match=r"too narrow"):
        from_dataframe(_ratings(rating=[1.0, 1.0, 1.0 + 1e-9]))


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan, "inf", "-Infinity", "nan", None])
def test_from_dataframe_refuses_non_finite_ratings(bad):
    frame = _ratings(rating=pd.Series([1.0, 2.0, bad], dtype=object))
    with pytest.raises(ValueError, match=r"custom: .*rating.*row 2"):
        from_dataframe(frame)


def test_load_csv_refuses_huge_rating_naming_the_file(tmp_path):
    path = write_lines(tmp_path / "huge.csv", ["user,item,rating", "1,1,4", "2,1,1e308"])
    with pytest.raises(MalformedFileError, match=r"huge\.csv.*too large for float32"):
        load_csv(path)


def test_pmf_fit_refuses_non_finite_factors():
    from simulators.pmf import PMFSimulator

    # Logs built directly (from_dataframe refuses such ratings): ALS overflows in
    # float64, or ALS is fine but the float32 copies (here the global mean) overflow.
    for top, reg in ((1e300, 15.0), (1e39, 1e80)):
        raw = pd.DataFrame({"user": [0, 0, 1, 1], "item": [0, 1, 0, 1], "rating": [0.0, top, top, top]})
        log = build_rating_log("huge", raw, RatingScale(0.0, top))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            with pytest.raises(ValueError, match=r"PMFSimulator.fit: .*'huge' are not finite.*Rescale"):
                PMFSimulator(dim=2, n_iters=2, reg=reg, bias_reg=reg).fit(log)


# -- D7: duplicate (user, item) pairs --------------------------------------------------
def test_from_dataframe_keeps_the_latest_duplicate_and_warns():
    df = pd.DataFrame({"user": ["a", "a", "b", "a", "a"], "item": [1, 1, 1, 1, 2],
                       "rating": [1, 5, 2, 4, 3], "ts": [5, 3, 1, 5, np.nan]})
    with pytest.warns(DataWarning, match=r"custom: dropped 2 duplicate rating\(s\)"):
        log = from_dataframe(df, timestamp="ts")
    kept = log.interactions.assign(user=lambda f: log.user_ids[f["user"]], item=lambda f: log.item_ids[f["item"]])
    # (a, 1): timestamps 5, 3, 5 -> the later of the two rows at time 5 wins; original order is kept
    assert kept[["user", "item", "rating"]].values.tolist() == [["b", 1, 2.0], ["a", 1, 4.0], ["a", 2, 3.0]]


def test_from_dataframe_duplicates_without_timestamps_keep_the_last_row():
    df = pd.DataFrame({"user": [1, 1, 2], "item": [1, 1, 1], "rating": [1, 5, 3]})
    with pytest.warns(DataWarning, match="1 duplicate"):
        log = from_dataframe(df)
    assert log.interactions["rating"].tolist() == [5.0, 3.0]


def test_from_dataframe_duplicates_error_policy():
    df = pd.DataFrame({"user": [1, 2, 1], "item": [1, 1, 1], "rating": [1, 5, 3]})
    with pytest.raises(ValueError, match=r"custom: 1 duplicate rating.*user 1, item 1.*rows 0 and 2.*'latest'"):
        from_dataframe(df, duplicates="error")
    with pytest.raises(ValueError, match=r"duplicates must be 'latest' or 'error', got 'first'"):
        from_dataframe(df, duplicates="first")


def test_load_csv_duplicates(tmp_path):
    path = write_lines(tmp_path / "dups.csv", ["user,item,rating", "1,7,4", "1,7,2", "2,8,5"])
    with pytest.warns(DataWarning, match="dups: dropped 1 duplicate"):
        log = load_csv(path)
    assert log.interactions["rating"].tolist() == [2.0, 5.0]
    with pytest.raises(MalformedFileError, match=r"dups\.csv.*1 duplicate rating"):
        load_csv(path, duplicates="error")


def test_ml100k_unverified_duplicates_keep_latest(data_dir, tmp_path, no_download):
    folder = _ml100k_copy(data_dir, tmp_path)
    with open(folder / "u.data", "a") as fh:  # user 196 rated item 242 with 3 stars at 881250949
        fh.write("196\t242\t1\t881250950\n")
    with pytest.warns(DataWarning, match=r"u\.data: dropped 1 duplicate"):
        log = load("ml-100k", path=folder, verify=False, cache_dir=tmp_path / "cache")
    assert len(log) == 100_000 and log.meta["duplicates_dropped"] == 1
    row = log.interactions[(log.user_ids[log.interactions["user"]] == 196)
                           & (log.item_ids[log.interactions["item"]] == 242)]
    assert row["rating"].tolist() == [1.0]
    with pytest.warns(DataWarning, match="dropped 1 duplicate"):  # the parsed copy repeats the warning
        load("ml-100k", path=folder, verify=False, cache_dir=tmp_path / "cache")
    with pytest.raises(MalformedFileError, match=r"u\.data, line 100001: .*user 196, item 242.*line 1\b"):
        load("ml-100k", path=folder, verify=False, cache_dir=tmp_path / "cache", duplicates="error")


def test_yahoo_unverified_duplicates(tmp_path, no_download):
    folder = tmp_path / "yahoo-r3"
    write_lines(folder / src.YAHOO_TRAIN, ["1\t14\t5", "1\t14\t1", "2\t46\t1"])
    write_lines(folder / src.YAHOO_TEST, ["1\t49\t1", "2\t14\t3"])
    with pytest.warns(DataWarning, match="dropped 1 duplicate"):
        log = load("yahoo-r3", path=folder, verify=False)
    assert log.interactions["rating"].tolist() == [1.0, 1.0]


# -- D10: truncated or renamed spreadsheets ---------------------------------------------
def _xlsx(path: Path, rows) -> Path:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    book.save(path)
    return path


@pytest.mark.parametrize("damage", ["truncate", "rename"])
@pytest.mark.parametrize("suffix", [".xlsx", ".xls"])
def test_damaged_spreadsheet_names_the_file(tmp_path, damage, suffix):
    path = tmp_path / f"sheet{suffix}"
    if damage == "truncate":
        good = _xlsx(tmp_path / "good.xlsx", [[2, 1.5, 99, -3.25], [1, 99, 99, 10]] * 50)
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    else:
        write_lines(path, ["2,1.5,99,-3.25", "1,99,99,10"])
    with pytest.raises(MalformedFileError) as err:
        load("jester", path=path)
    message = str(err.value)
    assert str(path) in message and "corrupt" in message and "recgym datasets fetch" in message


def test_damaged_joke_files_name_the_file(tmp_path):
    from recgym.data.jester import read_jokes

    for name in ("Dataset4JokeSet.xlsx", src.JESTER1_JOKES_ZIP):
        path = tmp_path / name
        path.write_bytes(b"PK\x03\x04 truncated")
        with pytest.raises(MalformedFileError, match=rf"{name}.*corrupt"):
            read_jokes(path)


# -- D20 / D21: encodings and directories -------------------------------------------------
@pytest.mark.parametrize("encoding, shown", [("utf-16", "UTF-16"), ("utf-16-le", "UTF-16"),
                                              ("utf-32", "UTF-32")])
def test_ml100k_utf16_ratings_file(data_dir, tmp_path, no_download, encoding, shown):
    folder = _ml100k_copy(data_dir, tmp_path)
    ratings = folder / "u.data"
    ratings.write_text(ratings.read_text(encoding="ascii"), encoding=encoding)
    with pytest.raises(MalformedFileError, match=rf"{shown} encoded; convert it to UTF-8") as err:
        load("ml-100k", path=folder, verify=False)
    assert str(ratings) in str(err.value)


def test_binary_file_with_nul_bytes(tmp_path, no_download):
    folder = tmp_path / "yahoo-r3"
    (folder).mkdir()
    (folder / src.YAHOO_TRAIN).write_bytes(b"1\t14\t5\n\x00\x01\x02\x03\xff\n")
    write_lines(folder / src.YAHOO_TEST, ["1\t49\t1"])
    with pytest.raises(MalformedFileError, match=r"train\.txt.*NUL bytes"):
        load("yahoo-r3", path=folder, verify=False)


def test_load_csv_utf16(tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("user,item,rating\n1,7,4\n2,7,2\n", encoding="utf-16")
    with pytest.raises(MalformedFileError, match=r"wide\.csv.*UTF-16 encoded; convert it to UTF-8"):
        load_csv(path)
    assert len(load_csv(path, encoding="utf-16")) == 2  # an explicit encoding is respected


def test_load_csv_undecodable_names_the_file(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("user,item,rating\nJosé,7,4\nAnn,7,2\n".encode("latin-1"))
    with pytest.raises(MalformedFileError, match=r"latin\.csv.*not valid utf-8.*encoding="):
        load_csv(path)
    assert load_csv(path, encoding="latin-1").user_ids.tolist() == ["Ann", "José"]


def test_load_csv_on_a_directory(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=rf"{tmp_path} is a directory, not a CSV file"):
        load_csv(tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"nope\.csv does not exist"):
        load_csv(tmp_path / "nope.csv")


def test_ml100k_utf8_item_file_is_decoded(data_dir, tmp_path, no_download):
    folder = _ml100k_copy(data_dir, tmp_path)
    items = folder / "u.item"
    items.write_text(items.read_text(encoding="latin-1"), encoding="utf-8")
    log = load("ml-100k", path=folder, verify=False)
    titles = log.item_features["title"]
    assert titles.str.contains("Misérables").any() and not titles.str.contains("Ã").any()


# -- D18: `recgym datasets verify` ignores the checksum memo ------------------------------
def test_datasets_verify_reports_each_file(data_dir, capsys):
    assert main(["datasets", "verify", "ml-100k", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    for name in ("u.data", "u.item", "u1.base", "README"):
        assert any(line.split()[:2] == ["OK", name] for line in out.splitlines()), out


def test_datasets_verify_catches_same_size_edit_the_memo_trusts(data_dir, tmp_path, capsys, monkeypatch, no_download):
    folder = _ml100k_copy(data_dir, tmp_path)
    cache = tmp_path / "cache"
    monkeypatch.setenv("RECGYM_CACHE_DIR", str(cache))
    load("ml-100k", path=folder, cache_dir=cache)  # memoises the digests
    items = folder / "u.item"
    before = items.stat()
    data = bytearray(items.read_bytes())
    data[:14] = b"1|Toy Storm (1"  # same size
    items.write_bytes(bytes(data))
    os.utime(items, ns=(before.st_atime_ns, before.st_mtime_ns))
    load("ml-100k", path=folder, cache_dir=cache, use_cache=False)  # the memo trusts (path, size, mtime)
    assert main(["datasets", "verify", "ml-100k", "--data-dir", str(folder.parent)]) == 1
    out = capsys.readouterr().out
    lines = {line.split()[1]: line.split()[0] for line in out.splitlines() if line.startswith(("OK", "MISMATCH"))}
    assert lines["u.item"] == "MISMATCH" and lines["u.data"] == "OK"
    with pytest.raises(ChecksumError, match="u.item"):  # the memo now holds the fresh digest
        load("ml-100k", path=folder, cache_dir=cache)


# -- D22: files written atomically get the usual mode ----------------------------------------
@pytest.fixture(params=[0o022, 0o002, 0o077])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_write_gives_the_umask_mode(tmp_path, umask):
    from recgym.data.atomic import atomic_write
    from recgym.experiments import run_dir

    target = tmp_path / "sub" / "file.txt"
    atomic_write(target, lambda tmp: tmp.write_text("hello"))
    assert target.read_text() == "hello" and _mode(target) == 0o666 & ~umask
    run_dir.write_json(tmp_path / "run.json", {"a": 1})
    assert _mode(tmp_path / "run.json") == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["file.txt", "run.json", "sub"]  # no temp files left


def test_atomic_write_leaves_no_temp_file_on_failure(tmp_path):
    from recgym.data.atomic import atomic_write

    def fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "x", fail)
    assert list(tmp_path.iterdir()) == []


def test_data_caches_and_extracted_files_get_the_umask_mode(data_dir, tmp_path, umask, no_download):
    from tests.test_data_support import make_ml100k_zip

    archive = make_ml100k_zip(data_dir, tmp_path / "ml-100k.zip")
    cache = tmp_path / "cache"
    load("ml-100k", path=archive, cache_dir=cache, verify=False)
    written = [cache / "checksums.json", *(cache / "parsed").glob("*.pkl"),
               *(cache / "ml-100k" / n for n in ML100K_REQUIRED)]
    assert len(written) == 6
    for path in written:
        assert _mode(path) == 0o666 & ~umask, path


# -- property-based: from_dataframe loads as documented or refuses with a ValueError -----------
_PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Each column draws from a clean pool or a hostile one (mixed with clean values),
# so that both loads and refusals are common.
_CLEAN_IDS = st.integers(-3, 3)  # a small pool, so repeated (user, item) pairs are common
_HOSTILE_IDS = st.one_of(
    _CLEAN_IDS,
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["a", "b", "", "ü"]),
    st.none(),
    st.booleans(),
)
_CLEAN_RATINGS = st.one_of(st.integers(-5, 5), st.floats(-10, 10))
_HOSTILE_RATINGS = st.one_of(
    _CLEAN_RATINGS,
    st.integers(-(2**80), 2**80),
    st.floats(allow_nan=True, allow_infinity=True),  # 1e308, subnormals, -0.0, ...
    st.sampled_from(["1", "2.5", "inf", "-inf", "nan", "five", "", " 3 ", "1e308", "0x10"]),
    st.none(),
    st.booleans(),
    st.complex_numbers(max_magnitude=10, allow_nan=False, allow_infinity=False),
)
_CLEAN_TIMES = st.one_of(st.integers(0, 10), st.just(np.nan))
_HOSTILE_TIMES = st.one_of(
    _CLEAN_TIMES, st.floats(allow_nan=True, allow_infinity=True), st.none(), st.sampled_from(["2020-01-01", "x"])
)


def _column(draw, clean, hostile, n: int) -> pd.Series:
    """A column of clean or hostile values, left to pandas' dtype inference or cast to object / category."""
    elements = draw(st.sampled_from([clean, clean, hostile]))
    column = pd.Series(draw(st.lists(elements, min_size=n, max_size=n)))
    cast = draw(st.sampled_from([None, None, object, "category"]))
    try:
        return column if cast is None else column.astype(cast)
    except (TypeError, ValueError):  # e.g. categories of mixed types that pandas cannot sort
        return column


@st.composite
def _frames(draw) -> tuple[pd.DataFrame, bool]:
    n = draw(st.integers(0, 7))
    frame = pd.DataFrame({"user": _column(draw, _CLEAN_IDS, _HOSTILE_IDS, n),
                          "item": _column(draw, _CLEAN_IDS, _HOSTILE_IDS, n),
                          "rating": _column(draw, _CLEAN_RATINGS, _HOSTILE_RATINGS, n)})
    with_time = draw(st.booleans())
    if with_time:
        frame["ts"] = _column(draw, _CLEAN_TIMES, _HOSTILE_TIMES, n)
    return frame, with_time


def _scale(bound):
    return (st.tuples(bound, bound).filter(lambda bounds: bounds[0] < bounds[1])
            .map(lambda bounds: RatingScale(*bounds)))


_SCALES = st.one_of(st.none(), _scale(st.floats(-20, 20)), _scale(st.floats(-1e40, 1e40)))


def _assert_documented_log(log: RatingLog, frame: pd.DataFrame, caught: list, duplicates: str) -> None:
    df = log.interactions
    ratings = df["rating"].to_numpy()
    assert len(df) > 0 and np.isfinite(ratings).all()
    assert ((ratings >= log.scale.low) & (ratings <= log.scale.high)).all()
    assert max(abs(log.scale.low), abs(log.scale.high), log.scale.high - log.scale.low) <= MAX_RATING_MAGNITUDE
    assert np.isfinite(log.rewards).all() and (np.abs(log.rewards) <= 1 + 1e-12).all()  # rounding at the bounds
    assert not np.isinf(df["timestamp"].to_numpy()).any()
    assert not df.duplicated(["user", "item"]).any()
    assert set(df["user"]) == set(range(log.n_users)) and set(df["item"]) == set(range(log.n_items))
    dropped = len(frame) - len(df)
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    if dropped:
        assert duplicates == "latest" and messages == [f"prop: dropped {dropped} duplicate rating(s) of the same "
                                                       f"(user, item) pair, keeping the latest of each by timestamp "
                                                       f"(ties: the last row); pass duplicates='error' to refuse "
                                                       f"such input"]
        assert log.meta["duplicates_dropped"] == dropped
    else:
        assert messages == []


@_PROPERTY
@given(drawn=_frames(), scale=_SCALES, duplicates=st.sampled_from(["latest", "error"]))
def test_from_dataframe_loads_as_documented_or_refuses(drawn, scale, duplicates):
    frame, with_time = drawn
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            log = from_dataframe(frame, timestamp="ts" if with_time else None, scale=scale, name="prop",
                                 duplicates=duplicates)
        except ValueError as err:
            # recgym's own refusal (named after the log), never a pandas or numpy error passing through
            assert type(err) is ValueError and str(err).startswith("prop: "), repr(err)
            return
    _assert_documented_log(log, frame, caught, duplicates)


@st.composite
def _clean_frames(draw) -> pd.DataFrame:
    n = draw(st.integers(2, 12))

    def column(elements):
        return draw(st.lists(elements, min_size=n, max_size=n))

    stars_or_reals = draw(st.sampled_from([st.integers(1, 5), st.floats(-1e6, 1e6)]))
    frame = pd.DataFrame({
        "user": column(st.integers(-2, 2)),
        "item": column(st.integers(-2, 2)),
        "rating": column(stars_or_reals),
        "ts": column(st.one_of(st.integers(0, 3), st.just(np.nan))),
    })
    spread = frame["rating"].max() - frame["rating"].min()
    assume(spread > 1e-3 * max(1.0, frame["rating"].abs().max()))
    return frame


@_PROPERTY
@given(frame=_clean_frames(), with_time=st.booleans())
def test_from_dataframe_keeps_the_latest_rating_of_each_pair(frame, with_time):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        log = from_dataframe(frame, timestamp="ts" if with_time else None, name="prop")
    df = log.interactions
    got = {(log.user_ids[u], log.item_ids[i]): r for u, i, r in zip(df["user"], df["item"], df["rating"])}
    times = frame["ts"].fillna(-np.inf) if with_time else pd.Series(0.0, index=frame.index)
    expected = {}
    for row in frame.assign(t=times).sort_values("t", kind="stable").itertuples():
        expected[(row.user, row.item)] = float(row.rating)  # later time, then later row, overwrites
    assert got == expected
