"""Exceptions and warnings of the data layer.

Each error subclasses the built-in exception a caller would naturally catch
(``FileNotFoundError``, ``ValueError``), so generic handlers such as the CLI's
keep working, while tests and callers can match the precise failure.
"""

from __future__ import annotations

from pathlib import Path


class DatasetNotFoundError(FileNotFoundError):
    """A dataset file is neither in the searched directories nor downloadable.

    The message names the missing file, every directory searched, the official
    URL and how to supply the data (``data_dir=``, ``RECGYM_DATA_DIR``).
    """

    def __str__(self) -> str:  # FileNotFoundError's default str adds "[Errno None]"
        return str(self.args[0]) if self.args else ""


class ChecksumError(ValueError):
    """A file's checksum differs from the registered one; the file is refused.

    :param path: the refused file.
    :param algorithm: ``"sha256"``, ``"md5"`` or ``"git-blob"``.
    :param expected: the registered digest.
    :param actual: the digest of the file on disk.
    """

    def __init__(self, path: Path | str, algorithm: str, expected: str, actual: str) -> None:
        self.path = Path(path)
        self.algorithm = algorithm
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"checksum mismatch for {self.path}: expected {algorithm} {expected}, "
            f"got {actual}. The file is refused: it is corrupted, truncated or not the "
            f"official version. Delete it and download or copy the original again."
        )


class MalformedFileError(ValueError):
    """A line (or spreadsheet row) of a data file does not have the expected form.

    :param path: the file.
    :param line: 1-based line (text files) or row (spreadsheets) number, if known.
    :param reason: what is wrong.
    """

    def __init__(self, path: Path | str, line: int | None, reason: str) -> None:
        self.path = Path(path)
        self.line = line
        self.reason = reason
        where = f"{self.path}, line {line}" if line is not None else str(self.path)
        super().__init__(f"malformed data in {where}: {reason}")


class UnknownDatasetError(ValueError):
    """The dataset name is not registered; the message lists the known names."""


class DataWarning(UserWarning):
    """Data were changed while loading (e.g. out-of-range Jester ratings clipped)."""
