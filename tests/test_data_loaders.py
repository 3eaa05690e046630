"""Loaders on the staged real data (numbers measured on the official files) and generated files."""

from __future__ import annotations

import shutil
import tarfile
import time
import warnings

import numpy as np
import pandas as pd
import pytest

from recgym.data import (
    DATASETS,
    JESTER_SCALE,
    STAR_SCALE,
    ChecksumError,
    DatasetNotFoundError,
    DataWarning,
    MalformedFileError,
    UnknownDatasetError,
    get_info,
    load,
)
from recgym.data import sources as src
from recgym.data.jester import matrix_to_ratings, read_layout_matrix
from recgym.data.movielens import read_movies_1m, read_users_1m
from tests.test_data_support import (  # noqa: F401  (fixtures)
    JESTER5K_CSV,
    isolated_cache,
    no_download,
    staged_log,
    write_lines,
)

JESTER4_REMOVED = {1, 2, 3, 4, 5, 6, 9, 10, 11, 12, 14, 20, 27, 31, 43, 51, 52, 61, 73, 80, 100, 116}


# -- MovieLens 100K ------------------------------------------------------------------
@pytest.fixture(scope="module")
def ml100k(data_dir):
    return staged_log(data_dir, "ml-100k")


def test_ml100k_counts_and_histogram(ml100k):
    assert (len(ml100k), ml100k.n_users, ml100k.n_items) == (100_000, 943, 1682)
    assert ml100k.rating_histogram().to_dict() == {1.0: 6110, 2.0: 11370, 3.0: 27145, 4.0: 34174, 5.0: 21201}
    assert list(ml100k.user_ids) == list(range(1, 944))
    assert list(ml100k.item_ids) == list(range(1, 1683))
    assert ml100k.scale == STAR_SCALE
    ts = ml100k.interactions["timestamp"]
    assert (ts.min(), ts.max()) == (874724710.0, 893286638.0)


def test_ml100k_rewards_and_liked(ml100k):
    rewards = ml100k.rewards
    assert rewards.min() == -1.0 and rewards.max() == 1.0
    np.testing.assert_allclose(rewards, (ml100k.interactions["rating"] - 3) / 2)
    assert ml100k.scale.is_liked(ml100k.interactions["rating"]).sum() == 34174 + 21201


def test_ml100k_side_information(ml100k):
    assert len(ml100k.genre_names) == 19
    assert ml100k.genre_names[0] == "unknown" and ml100k.genre_names[-1] == "Western"
    genres = ml100k.item_genres()
    assert genres.shape == (1682, 19)
    features = ml100k.item_features
    assert features.loc[0, "title"] == "Toy Story (1995)"
    assert features.loc[0, "year"] == 1995
    assert features["title"].str.contains("Misérables").any()  # latin-1 decoded
    assert features["year"].isna().sum() == 1  # item 267 "unknown" has neither title year nor date
    users = ml100k.user_features
    assert list(users.columns) == ["age", "gender", "occupation", "zip"]
    assert users.loc[0].tolist() == [24, "M", "technician", "85711"]
    assert users["occupation"].nunique() == 21
    assert ml100k.meta["official"] is True


def test_ml100k_second_load_uses_parsed_cache(data_dir, tmp_path, no_download):
    start = time.perf_counter()
    first = load("ml-100k", data_dir=data_dir, cache_dir=tmp_path)
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    second = load("ml-100k", data_dir=data_dir, cache_dir=tmp_path)
    cached_s = time.perf_counter() - start
    pd.testing.assert_frame_equal(first.interactions, second.interactions)
    pd.testing.assert_frame_equal(first.item_features, second.item_features)
    assert list((tmp_path / "parsed").glob("ml-100k-*.pkl"))
    assert cached_s < 1.0 and cached_s < first_s


# -- Jester -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def jester4(data_dir):
    return staged_log(data_dir, "jester-4")


def test_jester4_counts(jester4):
    assert (len(jester4), jester4.n_users, jester4.n_items) == (106_489, 7_699, 136)
    assert set(jester4.item_ids) == set(range(1, 159)) - JESTER4_REMOVED
    assert jester4.scale == JESTER_SCALE
    assert not jester4.has_timestamps
    per_user = jester4.interactions.groupby("user").size()
    assert (per_user.min(), per_user.max()) == (1, 136)


def test_jester4_clipping(jester4, data_dir):
    ratings = jester4.interactions["rating"]
    assert ratings.between(-10, 10).all()
    assert jester4.meta["out_of_range"] == 541
    # the clipped values pile up at the bounds
    assert (ratings.abs() == 10).sum() >= 541
    hist = jester4.rating_histogram(bins=4)
    assert hist.sum() == 106_489
    assert hist.tolist() == [16073, 40369, 30921, 19126]
    # a cached reload still reports the clipping
    with pytest.warns(DataWarning, match=r"541 of 106,489 ratings lie outside \[-10, 10\]"):
        load("jester-4", data_dir=data_dir, download=False)


def test_jester4_out_of_range_options(data_dir):
    sheet = data_dir / "jester" / "dataset4" / "jester.xlsx"
    matrix = read_layout_matrix(sheet)
    assert matrix.shape == (7_699, 159)
    dropped, notes = matrix_to_ratings(matrix, sheet, out_of_range="drop")
    assert len(dropped) == 106_489 - 541 and notes["out_of_range"] == 541
    assert notes["message"].endswith("dropped them")
    with pytest.raises(MalformedFileError, match="541 of 106,489"):
        matrix_to_ratings(matrix, sheet, out_of_range="raise")


def test_jester4_joke_texts(jester4):
    texts = jester4.item_features["text"]
    assert len(texts) == 136 and texts.str.len().gt(10).all()
    # contiguous item k is raw joke item_ids[k]; joke 7 is the first rated one
    assert jester4.item_ids[0] == 7


@pytest.fixture(scope="module")
def jester5k(data_dir):
    return staged_log(data_dir, "jester", path=data_dir / JESTER5K_CSV)


def test_jester_dataset1_layout_csv(jester5k):
    assert (len(jester5k), jester5k.n_users, jester5k.n_items) == (363_209, 5_000, 100)
    ratings = jester5k.interactions["rating"]
    assert (ratings.min(), ratings.max()) == (-9.95, 9.90)
    assert (ratings == 0).sum() == 1025
    per_user = jester5k.interactions.groupby("user").size()
    assert (per_user.min(), per_user.max()) == (36, 100)
    assert jester5k.meta["out_of_range"] == 0
    assert jester5k.item_features["text"].iloc[2].startswith("Q. What's 200 feet long")
    np.testing.assert_allclose(jester5k.rewards, ratings / 10)


def test_jester_layout_malformed_csv(tmp_path):
    rows = ["2,1.5,99,-3", "1,99,99,4.25", "1,99,abc,99", "0,99,99,99"]
    path = write_lines(tmp_path / "layout.csv", rows)
    with pytest.raises(MalformedFileError) as err:
        load("jester", path=path)
    assert err.value.line == 3 and "layout.csv" in str(err.value) and "line 3" in str(err.value)
    write_lines(path, ["2,1.5,99,-3", "1,99,4.25"])
    with pytest.raises(MalformedFileError, match=r"line 2: expected 4 fields"):
        load("jester", path=path)


def test_jester_layout_generated_csv_and_count_mismatch(tmp_path):
    path = write_lines(tmp_path / "small.csv", ["2,1.5,99,-3", "1,99,99,12.5", "3,0,0,0"])
    with pytest.warns(DataWarning, match="clipped"):
        small = load("jester", path=path)
    assert small.interactions[["user", "item", "rating"]].values.tolist() == [
        [0, 0, 1.5], [0, 2, -3.0], [1, 2, 10.0], [2, 0, 0.0], [2, 1, 0.0], [2, 2, 0.0]
    ]
    assert small.item_features is None
    write_lines(path, ["2,1.5,99,99"])
    with pytest.warns(DataWarning, match="count column differs"):
        load("jester", path=path, use_cache=False)


def test_jester_official_sheets_missing(tmp_path, no_download):
    with pytest.raises(DatasetNotFoundError, match="jester-data-1.xls"):
        load("jester", data_dir=tmp_path, download=False)


# -- MovieLens 1M ---------------------------------------------------------------------------
def test_ml1m_movies_and_users_parse(data_dir):
    movies = read_movies_1m(data_dir / "ml-1m" / "movies.dat")
    assert len(movies) == 3883 and movies.index.max() == 3952
    assert sum(c.startswith("genre:") for c in movies.columns) == 18
    assert movies.loc[1, "title"] == "Toy Story (1995)"
    assert movies.loc[1, ["genre:Animation", "genre:Children's", "genre:Comedy"]].tolist() == [1, 1, 1]
    assert movies["title"].str.contains("é").any()  # latin-1
    users = read_users_1m(data_dir / "ml-1m" / "users.dat")
    assert len(users) == 6040
    assert users["gender"].value_counts().to_dict() == {"M": 4331, "F": 1709}
    assert set(users["age"]) == {1, 18, 25, 35, 45, 50, 56}
    assert users["occupation"].nunique() == 21


def test_ml1m_registry_records_official_counts():
    info = get_info("ml-1m")
    assert (info.counts.n_ratings, info.counts.n_users, info.counts.n_items) == (1_000_209, 6_040, 3_706)
    assert info.file_spec("ratings.dat").checksum == ("git-blob", "77a7c4b150f588c23bb9e1f068aa996c0b413695")
    assert info.archives[0].known_hash == "md5:c4d9eecfca2ab87c1945afe126590906"


@pytest.fixture
def ml1m_generated(data_dir, tmp_path):
    """ml-1m folder with the staged movies/users and a generated ratings.dat in the exact format."""
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    for name in ("movies.dat", "users.dat"):
        shutil.copyfile(data_dir / "ml-1m" / name, folder / name)
    lines = ["1::1193::5::978300760", "1::661::3::978302109", "2::1357::5::978298709",
             "2::3068::4::978299000", "6040::1::3::956703932"]
    write_lines(folder / "ratings.dat", lines)
    return folder


def test_ml1m_ratings_parser_on_generated_file(ml1m_generated, no_download):
    log = load("ml-1m", data_dir=ml1m_generated.parent, verify=False)
    assert (len(log), log.n_users, log.n_items) == (5, 3, 5)
    assert log.user_ids.tolist() == [1, 2, 6040]
    assert log.interactions["rating"].tolist() == [5.0, 3.0, 5.0, 4.0, 3.0]
    assert log.interactions["timestamp"].iloc[0] == 978300760.0
    assert len(log.genre_names) == 18
    assert log.user_features.loc[0, "age_group"] == "Under 18"
    assert log.item_features.loc[log.item_ids.tolist().index(1), "title"] == "Toy Story (1995)"


def test_ml1m_generated_ratings_fail_git_blob_check(ml1m_generated, no_download):
    with pytest.raises(ChecksumError) as err:
        load("ml-1m", data_dir=ml1m_generated.parent)
    assert err.value.algorithm == "git-blob"
    assert "77a7c4b150f588c23bb9e1f068aa996c0b413695" in str(err.value)


def test_ml1m_malformed_and_unknown_movie(ml1m_generated, no_download):
    ratings = ml1m_generated / "ratings.dat"
    write_lines(ratings, ["1::1193::5::978300760", "1::661::3", "2::1357::5::978298709"])
    with pytest.raises(MalformedFileError, match=r"ratings.dat, line 2: expected 4 fields"):
        load("ml-1m", path=ml1m_generated, verify=False)
    write_lines(ratings, ["1::1193::5::978300760", "1::99999::3::978302109"])
    with pytest.raises(MalformedFileError, match=r"line 2: movie 99999 is not in the movie file"):
        load("ml-1m", path=ml1m_generated, verify=False)


def test_ml1m_staged_without_ratings_names_missing_file(data_dir, no_download):
    with pytest.raises(DatasetNotFoundError) as err:
        load("ml-1m", data_dir=data_dir, download=False)
    message = str(err.value)
    for part in ("ratings.dat", str(data_dir / "ml-1m"), src.ML1M_URL, "RECGYM_DATA_DIR"):
        assert part in message


# -- Yahoo! R3 (generated files only: the licence forbids redistribution) ------------------------
def _write_yahoo(folder):
    train = ["1\t14\t5", "1\t35\t1", "2\t46\t1", "2\t83\t2", "3\t93\t4", "4\t1000\t3"]
    test = ["1\t49\t1", "1\t126\t1", "2\t14\t3", "2\t500\t5"]
    write_lines(folder / src.YAHOO_TRAIN, train)
    write_lines(folder / src.YAHOO_TEST, test)
    return folder


def test_yahoo_r3_on_generated_files(tmp_path, no_download):
    folder = _write_yahoo(tmp_path / "yahoo-r3")
    log = load("yahoo-r3", data_dir=tmp_path, verify=False)
    assert (len(log), log.n_users) == (6, 4)
    assert log.item_ids.tolist() == [14, 35, 46, 49, 83, 93, 126, 500, 1000]  # union of both files
    test = log.extra["test"]
    assert len(test) == 4 and list(test.columns) == ["user", "item", "rating", "timestamp"]
    # same id space: raw (user 2, song 14) of the test file
    row = test.iloc[2]
    assert (log.user_ids[int(row["user"])], log.item_ids[int(row["item"])], row["rating"]) == (2, 14, 3.0)
    assert not log.has_timestamps and log.scale == STAR_SCALE
    assert len(log.split_table("test")) == 4
    # the same through path= (directory, and train file with the test file beside it)
    assert len(load("yahoo-r3", path=folder, verify=False)) == 6
    assert len(load("yahoo-r3", path=folder / src.YAHOO_TRAIN, verify=False).extra["test"]) == 4
    with pytest.raises(ChecksumError, match=src.YAHOO_FILES[0].sha256):
        load("yahoo-r3", data_dir=tmp_path)


def test_yahoo_r3_from_tgz_archive(tmp_path, no_download):
    staging = _write_yahoo(tmp_path / "staging")
    archive = tmp_path / "data" / "yahoo-r3" / "dataset.tgz"
    archive.parent.mkdir(parents=True)
    with tarfile.open(archive, "w:gz") as tf:
        for name in (src.YAHOO_TRAIN, src.YAHOO_TEST):
            tf.add(staging / name, f"ydata-ymusic-rating-study-v1_0/{name}")
    log = load("yahoo-r3", data_dir=tmp_path / "data", verify=False, cache_dir=tmp_path / "cache")
    assert len(log) == 6 and len(log.extra["test"]) == 4
    assert (tmp_path / "cache" / "yahoo-r3" / src.YAHOO_TEST).is_file()


def test_yahoo_r3_missing_explains_webscope(tmp_path, no_download):
    with pytest.raises(DatasetNotFoundError) as err:
        load("yahoo-r3", data_dir=tmp_path)  # download=True: still no download attempt
    message = str(err.value)
    for part in ("Webscope", "https://webscope.sandbox.yahoo.com/", "R3 - Yahoo! Music ratings for User Selected "
                 "and Randomly Selected songs", "<data_dir>/yahoo-r3/", src.YAHOO_TRAIN):
        assert part in message


def test_yahoo_r3_registry_official_facts():
    info = get_info("yahoo-r3")
    assert not info.downloadable and info.urls == ()
    assert (info.counts.n_users, info.counts.n_items, info.counts.n_ratings) == (15_400, 1_000, 311_704)
    assert info.extra_counts["test"].n_ratings == 54_000
    assert info.file_spec(src.YAHOO_TRAIN).sha256.startswith("85538b3c")


def test_yahoo_r3_malformed_rating(tmp_path, no_download):
    folder = _write_yahoo(tmp_path / "yahoo-r3")
    write_lines(folder / src.YAHOO_TEST, ["1\t49\t1", "1\t126\t7"])
    with pytest.raises(MalformedFileError, match=r"test.txt, line 2: rating 7"):
        load("yahoo-r3", path=folder, verify=False)


# -- registry, synthetic, names ---------------------------------------------------------------
def test_synthetic_delegates_kwargs():
    log = load("synthetic", n_users=30, n_items=40, seed=3)
    assert (log.n_users, log.n_items) == (30, 40)
    assert log.interactions.equals(load("synthetic", n_users=30, n_items=40, seed=3).interactions)


def test_unknown_name_lists_known_ones():
    with pytest.raises(UnknownDatasetError) as err:
        load("movielens-25m")
    for name in DATASETS:
        assert name in str(err.value)


def test_unexpected_option_is_an_error(data_dir):
    with pytest.raises(TypeError, match="unexpected option"):
        load("ml-100k", data_dir=data_dir, clip=True)


def test_no_warnings_on_clean_official_load(data_dir, no_download):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load("ml-100k", data_dir=data_dir)
