"""``recgym.data.load(name)``: find, verify, parse (or reuse the parsed copy) a dataset.

Each registered dataset has a :class:`Loader` that names the files it needs
and turns them into a :class:`RatingLog`. :func:`load` does the common part:
locate the files (:mod:`recgym.data.fetch`), verify their checksums, look up
the parsed cache, parse, check the result against the official counts and
record provenance in ``log.meta``.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from recgym.data import parsed_cache
from recgym.data import sources as src
from recgym.data.checksums import cached_digest
from recgym.data.errors import DataWarning, DatasetNotFoundError
from recgym.data.fetch import resolve, verify_registered
from recgym.data.jester import build_jester_log, find_jokes_beside
from recgym.data.locations import cache_dir as default_cache_dir
from recgym.data.movielens import parse_ml100k, parse_ml1m
from recgym.data.rating_log import RatingLog
from recgym.data.registry import DATASETS, DatasetInfo, get_info
from recgym.data.synthetic import make_synthetic_log
from recgym.data.yahoo import parse_yahoo_r3

Files = Mapping[str, Path]


@dataclass(frozen=True)
class Loader:
    """How one dataset is read.

    :param parse: ``(files, **options) -> RatingLog``; ``files`` maps canonical names to paths.
    :param optional: files used when present next to the required ones.
    :param options: the keyword options ``parse`` accepts, with defaults.
    :param from_file: maps a single user-given file (``load(name, path=FILE)``)
        to the ``files`` mapping, for datasets that accept one.
    """

    parse: Callable[..., RatingLog]
    optional: tuple[str, ...] = ()
    options: Mapping[str, Any] | None = None
    from_file: Callable[[Path, Mapping[str, Any]], dict[str, Path]] | None = None


def _parse_jester(name: str, sheets: tuple[str, ...], jokes_name: str):
    def parse(files: Files, out_of_range: str = "clip", jokes: str | os.PathLike[str] | None = None) -> RatingLog:
        present = [files[s] for s in sheets if s in files] or [files["ratings"]]
        jokes_path = Path(jokes) if jokes is not None else files.get(jokes_name) or files.get("jokes")
        return build_jester_log(name, present, jokes=jokes_path, out_of_range=out_of_range,
                                expected_rows=src.JESTER1_ROWS)
    return parse


def _jester_file(path: Path, options: Mapping[str, Any]) -> dict[str, Path]:
    files = {"ratings": path}
    jokes = options.get("jokes")
    jokes_path = Path(jokes) if jokes is not None else find_jokes_beside(path)
    if jokes_path is not None:
        files["jokes"] = jokes_path
    return files


def _yahoo_file(path: Path, options: Mapping[str, Any]) -> dict[str, Path]:
    test = path.with_name(src.YAHOO_TEST) if path.name != src.YAHOO_TEST else path
    if "train" in path.name and not test.is_file():
        test = path.with_name(path.name.replace("train", "test"))
    if not test.is_file() or test == path:
        raise DatasetNotFoundError(
            f"yahoo-r3: the random-exposure test file {src.YAHOO_TEST} was not found next to {path}; "
            "R3 is loaded as train + test. Pass the directory holding both files as path=."
        )
    return {src.YAHOO_TRAIN: path, src.YAHOO_TEST: test}


def _parse_yahoo(files: Files, duplicates: str = "latest") -> RatingLog:
    return parse_yahoo_r3(files[src.YAHOO_TRAIN], files[src.YAHOO_TEST], duplicates=duplicates)


# Jester has no duplicates option: its one-cell-per-(user, joke) layout cannot repeat a pair.
_DUPLICATES_OPTION = {"duplicates": "latest"}

LOADERS: dict[str, Loader] = {
    "ml-100k": Loader(parse_ml100k, options=_DUPLICATES_OPTION),
    "ml-1m": Loader(parse_ml1m, options=_DUPLICATES_OPTION),
    "jester": Loader(
        _parse_jester("jester", tuple(src.JESTER1_ROWS), src.JESTER1_JOKES_ZIP),
        optional=(src.JESTER1_JOKES_ZIP,),
        options={"out_of_range": "clip", "jokes": None},
        from_file=_jester_file,
    ),
    "jester-4": Loader(
        _parse_jester("jester-4", ("jester.xlsx",), "Dataset4JokeSet.xlsx"),
        optional=("Dataset4JokeSet.xlsx",),
        options={"out_of_range": "clip", "jokes": None},
        from_file=_jester_file,
    ),
    "yahoo-r3": Loader(_parse_yahoo, options=_DUPLICATES_OPTION, from_file=_yahoo_file),
}


def available_datasets(data_dir: str | os.PathLike[str] | None = None, local_only: bool = False) -> list[str]:
    """Names of the registered datasets (or only those available locally).

    :param data_dir: data directory to check (default ``RECGYM_DATA_DIR``), with ``local_only``.
    :param local_only: list only datasets whose files or archives are found locally (no download).
    """
    if not local_only:
        return list(DATASETS)
    from recgym.data.fetch import locate

    return [name for name, info in DATASETS.items() if name == "synthetic" or locate(info, data_dir) is not None]


def _is_archive(path: Path, info: DatasetInfo) -> bool:
    import fnmatch

    return any(
        fnmatch.fnmatchcase(path.name, p) for a in info.archives for p in (a.filename, *a.aliases)
    )


def _check_counts(rating_log: RatingLog, info: DatasetInfo) -> None:
    """Warn when a verified official dataset parses to other counts than the official ones."""
    expected = info.counts
    if expected is None:
        return
    got = (rating_log.n_users, rating_log.n_items, len(rating_log))
    want = (expected.n_users, expected.n_items, expected.n_ratings)
    if got != want:
        warnings.warn(
            f"{info.name}: parsed {got[0]:,} users, {got[1]:,} items, {got[2]:,} ratings; the official "
            f"counts are {want[0]:,}, {want[1]:,}, {want[2]:,}. Check that the files are the official ones.",
            DataWarning,
            stacklevel=3,
        )


def load(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    path: str | os.PathLike[str] | None = None,
    download: bool = True,
    *,
    verify: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    use_cache: bool = True,
    progress: bool = True,
    **kwargs: Any,
) -> RatingLog:
    """Load a registered dataset as a :class:`RatingLog`.

    Files are looked for in ``path`` if given, else in ``data_dir`` (or
    ``RECGYM_DATA_DIR``) and the cache, in the dataset's sub-folder or
    directly; official archives found there are extracted; otherwise the
    official archives are downloaded (where the licence allows). Registered
    checksums are verified and the parsed log is cached, keyed by them.

    :param name: ``"ml-100k"``, ``"ml-1m"``, ``"jester"``, ``"jester-4"``,
        ``"yahoo-r3"`` or ``"synthetic"`` (see :data:`DATASETS`).
    :param data_dir: directory holding the data or official archives.
    :param path: a directory or official archive to read instead of searching;
        for Jester any file in the official layout (.xls, .xlsx, .csv), for
        Yahoo! R3 the train file with the test file next to it.
    :param download: download the official archives when not found locally.
    :param verify: verify registered checksums (False for your own copies,
        e.g. a modified file in the official format).
    :param cache_dir: cache directory (default ``RECGYM_CACHE_DIR`` or ``~/.cache/recgym``).
    :param use_cache: reuse/store the parsed copy of the log.
    :param progress: show a progress bar while downloading.
    :param kwargs: dataset options: ``synthetic`` takes :func:`make_synthetic_log`'s
        arguments; Jester takes ``out_of_range`` (``"clip"``, ``"drop"`` or
        ``"raise"``) and ``jokes`` (a joke-text file); MovieLens and Yahoo! R3
        take ``duplicates`` (``"latest"``, the default, keeps the latest rating
        of a repeated (user, item) pair and warns; ``"error"`` refuses the
        file). The official files have no repeated pairs.
    :raises UnknownDatasetError: unknown name (the message lists the known ones).
    :raises DatasetNotFoundError: files missing and not downloadable (or offline).
    :raises ChecksumError: a file differs from its registered checksum.
    :raises MalformedFileError: a malformed line (file and line number named).
    """
    info = get_info(name)
    if name == "synthetic":
        return make_synthetic_log(**kwargs)
    loader = LOADERS[name]
    unknown = set(kwargs) - set(loader.options or {})
    if unknown:
        raise TypeError(f"load({name!r}) got unexpected option(s) {sorted(unknown)}; "
                        f"it accepts {sorted(loader.options or {}) or 'none'}")
    options = {**(loader.options or {}), **kwargs}
    cache = default_cache_dir(cache_dir)

    given = Path(path).expanduser() if path is not None else None
    if given is not None and given.is_file() and not _is_archive(given, info):
        if loader.from_file is None:
            raise DatasetNotFoundError(
                f"{name}: path={given} is a file; pass the directory holding {', '.join(info.required)} "
                "or the official archive"
            )
        files = loader.from_file(given, options)
        source = given.parent
        if verify:
            for role, file in files.items():
                verify_registered(info, file.name, file, cache)
        official = False
    else:
        resolved = resolve(info, info.required, loader.optional, data_dir=data_dir, path=given, cache=cache,
                           download=download, verify_files=verify, progress=progress)
        files, source = resolved.files, resolved.directory
        official = verify

    digests = {}
    for role, file in files.items():
        spec = info.file_spec(file.name)
        algorithm = spec.checksum[0] if spec is not None and spec.checksum else "sha256"
        digests[role] = f"{algorithm}:{cached_digest(file, algorithm, cache)}"
    if options.get("jokes") is not None:
        digests["jokes-option"] = f"sha256:{cached_digest(Path(options['jokes']), 'sha256', cache)}"
    key = parsed_cache.cache_key(name, digests, {k: v for k, v in options.items() if k != "jokes"})

    provenance = {
        "dataset": name,
        "source_dir": str(source),
        "files": {role: str(file) for role, file in files.items()},
        "checksums": digests,
        "official": official,
    }
    rating_log = parsed_cache.read(cache, name, key) if use_cache else None
    if rating_log is not None:
        # same bytes, but possibly read from another place this time
        rating_log.meta.update(provenance)
        for message in rating_log.meta.get("warnings", ()):
            warnings.warn(message, DataWarning, stacklevel=2)
        return rating_log
    rating_log = loader.parse(files, **options) if loader.options else loader.parse(files)
    rating_log.meta.update(provenance)
    if official and options == (loader.options or {}):  # options like out_of_range="drop" change counts
        _check_counts(rating_log, info)
    if use_cache:
        parsed_cache.write(cache, name, key, rating_log)
    return rating_log
