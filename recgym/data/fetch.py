"""Finding, extracting, downloading and verifying a dataset's files.

Search order for the files a load needs (all from one directory):

1. ``path=`` when given: that directory (or archive) only, nothing else;
2. the data directory (``data_dir=`` or ``RECGYM_DATA_DIR``), in the dataset's
   sub-folder (``ml-100k/``, ``jester/dataset4/``, ...) or directly in it;
3. the cache (``RECGYM_CACHE_DIR`` or ``~/.cache/recgym``), same sub-folders.

Where only an official archive is found, it is extracted into the cache.
Failing all that, the official archives are downloaded with pooch (hash
checked where one is known) if ``download`` is allowed. Every file with a
registered checksum is verified before use.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import shutil
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import pooch

from recgym.data.atomic import atomic_write
from recgym.data.checksums import cached_digest, verify
from recgym.data.errors import ChecksumError, DatasetNotFoundError
from recgym.data.locations import DATA_DIR_ENV, cache_dir as default_cache_dir, user_data_dir
from recgym.data.registry import DatasetInfo
from recgym.data.sources import Archive, FileSpec

log = logging.getLogger(__name__)


@dataclass
class Resolved:
    """The files found for a load.

    :param directory: where the required files are.
    :param files: canonical name -> path, for the required and found optional files.
    """

    directory: Path
    files: dict[str, Path]


def find_file(directory: Path, name: str, spec: FileSpec | None = None) -> Path | None:
    """A file by canonical name, or under one of its alias patterns, in ``directory``."""
    candidate = directory / name
    if candidate.is_file():
        return candidate
    for pattern in spec.aliases if spec else ():
        matches = sorted(p for p in directory.glob(pattern) if p.is_file())
        if matches:
            return matches[0]
    return None


def _find_archive(directory: Path, archive: Archive) -> Path | None:
    return find_file(directory, archive.filename, FileSpec(archive.filename, aliases=archive.aliases))


def _archive_named(info: DatasetInfo, filename: str) -> Archive | None:
    for archive in info.archives:
        if any(fnmatch.fnmatchcase(filename, p) for p in (archive.filename, *archive.aliases)):
            return archive
    return None


def _candidate_dirs(base: Path, info: DatasetInfo) -> list[Path]:
    return [base / sub for sub in info.subdirs] + [base]


def _search_dirs(info: DatasetInfo, data_dir: Path | None, path: Path | None, cache: Path) -> list[Path]:
    if path is not None:
        return _candidate_dirs(path, info)
    dirs = _candidate_dirs(data_dir, info) if data_dir is not None else []
    return dirs + _candidate_dirs(cache, info)


def extract_dir(info: DatasetInfo, cache: Path) -> Path:
    """The cache folder that downloads and extracted archives of a dataset go to."""
    return cache / (info.subdirs[0] if info.subdirs else info.name)


def _member_target(member_name: str, archive: Archive, info: DatasetInfo) -> str | None:
    """Canonical name of an archive member we want, or None to skip it."""
    base = os.path.basename(member_name.rstrip("/"))
    for name in archive.provides:
        spec = info.file_spec(name)
        patterns = (name, *(spec.aliases if spec else ()))
        if any(fnmatch.fnmatchcase(base, p) for p in patterns):
            return name
    return None


def extract_archive(archive_path: Path, archive: Archive, info: DatasetInfo, dest: Path) -> list[Path]:
    """Copy the wanted members of a zip or tar archive into ``dest`` under canonical names.

    Members are written by their canonical name only (never by the path stored
    in the archive), so a hostile archive cannot write outside ``dest``.

    :returns: the files written.
    """
    dest.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def write(target: str, stream) -> None:
        # Write to a temporary name first: an interrupted extraction never
        # leaves a truncated file under the canonical name.
        def copy(tmp: Path) -> None:
            with open(tmp, "wb") as out:
                shutil.copyfileobj(stream, out)

        atomic_write(dest / target, copy)
        written.append(dest / target)

    if zipfile.is_zipfile(archive_path):
        with zipfile.ZipFile(archive_path) as zf:
            for member in zf.infolist():
                target = None if member.is_dir() else _member_target(member.filename, archive, info)
                if target:
                    with zf.open(member) as stream:
                        write(target, stream)
    elif tarfile.is_tarfile(archive_path):
        with tarfile.open(archive_path) as tf:
            for member in tf.getmembers():
                target = _member_target(member.name, archive, info) if member.isfile() else None
                if target:
                    with tf.extractfile(member) as stream:
                        write(target, stream)
    else:
        raise DatasetNotFoundError(f"{archive_path} is neither a zip nor a tar archive")
    log.info("extracted %s from %s into %s", [p.name for p in written], archive_path, dest)
    return written


def _verify_archive(archive_path: Path, archive: Archive, cache: Path) -> None:
    if archive.known_hash:
        algorithm, digest = archive.known_hash.split(":", 1)
        verify(archive_path, algorithm, digest, cache)


def not_found_message(info: DatasetInfo, missing: Sequence[str], searched: Iterable[Path], reason: str = "") -> str:
    """The error text for missing files: what, where searched, where from, how to supply."""
    searched = [Path(d) for d in dict.fromkeys(str(d) for d in searched)]
    lines = [f"{info.name}: file(s) {', '.join(missing)} not found{reason}."]
    lines.append("Searched: " + ", ".join(str(d) for d in searched) + ".")
    sample = find_sample(info, searched)
    if sample is not None:
        # a sample is never used in place of the full dataset: the user chooses it by name
        lines.append(f"A sample in the official layout was found: {sample}; load it with "
                     f"load({info.name!r}, path={str(sample)!r}) (environments: path=...).")
    if info.manual:
        lines.append(info.manual)
    else:
        urls = info.urls or (info.homepage,)
        sub = info.subdirs[0] if info.subdirs else info.name
        lines.append(f"Official source: {', '.join(urls)} (home page {info.homepage}).")
        lines.append(
            f"To supply it: put the archive or its extracted files in <data_dir>/{sub}/ and pass "
            f"data_dir=<data_dir> (CLI: --data-dir) or set the environment variable {DATA_DIR_ENV}; "
            f"or let recgym download it with load({info.name!r}, download=True) or "
            f"`recgym datasets fetch {info.name}`."
        )
    return " ".join(lines)


def download_archive(archive: Archive, dest: Path, progress: bool = True) -> Path:
    """Download one archive into ``dest`` with pooch (checking its hash when known).

    :raises ChecksumError: the download does not match the known hash.
    :raises OSError: every URL failed (network errors are re-raised as the last one).
    """
    last: Exception | None = None
    for url in archive.urls:
        try:
            return Path(
                pooch.retrieve(
                    url,
                    known_hash=archive.known_hash,
                    fname=archive.filename,
                    path=dest,
                    progressbar=progress,
                )
            )
        except ValueError as err:  # pooch's hash mismatch (it deletes the bad file)
            if "hash" not in str(err).lower():
                raise
            algorithm, expected = (archive.known_hash or "sha256:?").split(":", 1)
            found = re.findall(r"\b([0-9a-f]{32,64})\b", str(err))
            actual = next((h for h in found if h != expected), "unknown")
            raise ChecksumError(url, algorithm, expected, actual) from err
        except Exception as err:  # network failure: try the next mirror
            log.warning("download of %s failed: %s", url, err)
            last = err
    raise OSError(f"could not download {archive.filename} from {', '.join(archive.urls)}: {last}") from last


def resolve(
    info: DatasetInfo,
    required: Sequence[str],
    optional: Sequence[str] = (),
    data_dir: str | os.PathLike[str] | None = None,
    path: str | os.PathLike[str] | None = None,
    cache: Path | None = None,
    download: bool = True,
    verify_files: bool = True,
    progress: bool = True,
) -> Resolved:
    """Find (extracting or downloading if needed) and verify the files of a load.

    :param info: the dataset.
    :param required: canonical names of the files that must be found together.
    :param optional: names looked for next to them (missing ones are skipped).
    :param data_dir: data directory (default ``RECGYM_DATA_DIR``).
    :param path: a directory or official archive to use instead of the search.
    :param cache: cache directory (default ``RECGYM_CACHE_DIR`` / ``~/.cache/recgym``).
    :param download: whether to download the official archives when not found.
    :param verify_files: check registered checksums (False for your own copies).
    :param progress: show a download progress bar.
    :raises DatasetNotFoundError: not found and not downloadable (or offline).
    :raises ChecksumError: a file or archive differs from its registered checksum.
    """
    cache = default_cache_dir(cache)
    root = Path(path).expanduser() if path is not None else None
    if root is not None and not root.exists():
        raise DatasetNotFoundError(f"{info.name}: path {root} does not exist")
    target = extract_dir(info, cache)

    if root is not None and root.is_file():
        # an official archive given directly
        archive = _archive_named(info, root.name)
        if archive is None:
            raise DatasetNotFoundError(
                f"{info.name}: {root} is not one of the official archives "
                f"({', '.join(a.filename for a in info.archives) or 'none'}); pass a directory instead"
            )
        if verify_files:
            _verify_archive(root, archive, cache)
        extract_archive(root, archive, info, target)
        searched = [target]
    else:
        searched = _search_dirs(info, user_data_dir(data_dir) if root is None else None, root, cache)

    directory = _first_complete(searched, info, required)
    if directory is None and not (root is not None and root.is_file()):
        directory = _extract_found_archives(searched, info, required, target, cache, verify_files)
    if directory is None and download and info.downloadable and root is None:
        directory = _download(info, required, target, cache, progress, searched)
    if directory is None:
        missing = _missing_in_best(searched, info, required)
        reason = "" if download or not info.downloadable else " (download=False)"
        raise DatasetNotFoundError(not_found_message(info, missing, searched, reason))

    files = {}
    for name in (*required, *optional):
        found = find_file(directory, name, info.file_spec(name))
        if found is None and name in optional:
            found = find_file(target, name, info.file_spec(name))
        if found is not None:
            files[name] = found
    if verify_files:
        for name, file in files.items():
            verify_registered(info, name, file, cache)
    return Resolved(directory, files)


def verify_registered(info: DatasetInfo, name: str, file: Path, cache: Path) -> None:
    """Verify a file against its registered checksum, if the registry has one."""
    spec = info.file_spec(name)
    if spec is not None and spec.checksum is not None:
        algorithm, digest = spec.checksum
        verify(file, algorithm, digest, cache)


def _first_complete(dirs: Sequence[Path], info: DatasetInfo, required: Sequence[str]) -> Path | None:
    for d in dirs:
        if d.is_dir() and all(find_file(d, n, info.file_spec(n)) for n in required):
            return d
    return None


def _missing_in_best(dirs: Sequence[Path], info: DatasetInfo, required: Sequence[str]) -> list[str]:
    best = list(required)
    for d in dirs:
        if d.is_dir():
            missing = [n for n in required if not find_file(d, n, info.file_spec(n))]
            if len(missing) < len(best):
                best = missing
    return best


def _archives_for(info: DatasetInfo, required: Sequence[str]) -> list[Archive]:
    return [a for a in info.archives if set(a.provides) & set(required)]


def _extract_found_archives(
    dirs: Sequence[Path], info: DatasetInfo, required: Sequence[str], target: Path, cache: Path, verify_files: bool
) -> Path | None:
    found_any = False
    for archive in _archives_for(info, required):
        if not archive.extract:
            continue
        for d in dirs:
            located = _find_archive(d, archive) if d.is_dir() else None
            if located is not None:
                if verify_files:
                    _verify_archive(located, archive, cache)
                extract_archive(located, archive, info, target)
                found_any = True
                break
    return _first_complete([target], info, required) if found_any else None


def _download(
    info: DatasetInfo, required: Sequence[str], target: Path, cache: Path, progress: bool, searched: Sequence[Path]
) -> Path | None:
    for archive in _archives_for(info, required) + [a for a in info.archives if a.optional]:
        if archive.extract and all(find_file(target, n, info.file_spec(n)) for n in archive.provides):
            continue  # already extracted earlier
        if not archive.extract and (target / archive.filename).is_file():
            continue
        try:
            downloaded = download_archive(archive, target, progress)
        except ChecksumError:
            raise
        except OSError as err:
            if archive.optional:
                log.warning("optional %s not downloaded: %s", archive.filename, err)
                continue
            missing = _missing_in_best(list(searched), info, required)
            raise DatasetNotFoundError(
                not_found_message(info, missing, searched, f" and the download failed ({err}); "
                                  "if you are offline, supply the files yourself")
            ) from err
        if archive.extract:
            extract_archive(downloaded, archive, info, target)
    return _first_complete([target], info, required)


def search_dirs(info: DatasetInfo, data_dir: str | os.PathLike[str] | None = None,
                cache: Path | None = None) -> list[Path]:
    """The directories a load searches for a dataset's files, in order (data directory, then the cache)."""
    return _search_dirs(info, user_data_dir(data_dir), None, default_cache_dir(cache))


def find_sample(info: DatasetInfo, dirs: Iterable[Path]) -> Path | None:
    """The first of the dataset's sample files (``info.samples``) in ``dirs`` or their direct sub-folders.

    Sub-folders count because a sample is often kept in a folder of its own beside the
    official files (``jester/jester5k-recommenderlab/``).
    """
    for directory in dirs:
        try:
            folders = [directory, *sorted(p for p in directory.iterdir() if p.is_dir())]
        except OSError:  # absent or unreadable: nothing found there
            continue
        for folder in folders:
            for name in info.samples:
                if (folder / name).is_file():
                    return folder / name
    return None


def locate(info: DatasetInfo, data_dir: str | os.PathLike[str] | None = None, cache: Path | None = None) -> Path | None:
    """Where a dataset is available locally (files or an official archive), without side effects.

    :returns: the directory with the required files, the archive path, or None.
    """
    if not info.required:
        return None
    cache = default_cache_dir(cache)
    dirs = _search_dirs(info, user_data_dir(data_dir), None, cache)
    directory = _first_complete(dirs, info, info.required)
    if directory is not None:
        return directory
    archives = [a for a in _archives_for(info, info.required) if a.extract]
    found = {a.filename: next((p for d in dirs if d.is_dir() and (p := _find_archive(d, a))), None) for a in archives}
    if archives and all(found.values()):
        return next(iter(found.values()))
    return None


@dataclass(frozen=True)
class FileCheck:
    """The outcome of rehashing one dataset file (see :func:`rehash_files`).

    :param name: canonical file name.
    :param path: the file on disk.
    :param algorithm: the registered checksum's algorithm, or None when none is registered.
    :param expected: the registered digest, or None.
    :param actual: the digest just computed, or None when nothing was registered.
    """

    name: str
    path: Path
    algorithm: str | None
    expected: str | None
    actual: str | None

    @property
    def status(self) -> str:
        """``"OK"``, ``"MISMATCH"`` or ``"UNCHECKED"`` (no registered checksum)."""
        if self.expected is None:
            return "UNCHECKED"
        return "OK" if self.actual is not None and self.actual.lower() == self.expected.lower() else "MISMATCH"


def rehash_files(info: DatasetInfo, resolved: Resolved, cache: Path) -> list[FileCheck]:
    """Hash every registered file of a dataset found locally, ignoring the checksum memo.

    The files are those of ``resolved`` plus every other registered file in
    its directory (ML-100K's split files, READMEs, ...). The fresh digests
    replace the memo's, so a later load refuses a file that fails here.

    :param info: the dataset.
    :param resolved: its files, as found by :func:`resolve`.
    :param cache: the cache directory holding the memo.
    """
    files = dict(resolved.files)
    for spec in info.files:
        found = files.get(spec.name) or find_file(resolved.directory, spec.name, spec)
        if found is not None:
            files[spec.name] = found
    checks = []
    for name, path in files.items():
        spec = info.file_spec(name)
        if spec is None or spec.checksum is None:
            checks.append(FileCheck(name, path, None, None, None))
            continue
        algorithm, expected = spec.checksum
        checks.append(FileCheck(name, path, algorithm, expected, cached_digest(path, algorithm, cache, refresh=True)))
    return checks
