"""Strict reading of delimited text files: every bad line is reported by number.

pandas' C parser does the work; this module adds what a loader needs to be
sure nothing is silently wrong: a per-line field count (computed with numpy on
the raw bytes, so it stays fast for a million lines), numeric columns that
must parse fully, and errors that name the file and the 1-based line.
"""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from recgym.data.errors import MalformedFileError

# The byte multi-character separators (MovieLens-1M "::") are replaced with,
# so that pandas' fast C parser can read the file.
_UNIT_SEPARATOR = "\x1f"

#: ``read_table(encoding=AUTO_ENCODING)``: strict UTF-8 if the bytes are valid
#: UTF-8, else latin-1 (what the official MovieLens side files use).
AUTO_ENCODING = "auto"

# UTF-32 first: its little-endian mark starts with UTF-16's.
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
#: Bytes looked at to recognise a wide (UTF-16/32) or binary file.
SNIFF_BYTES = 1 << 16


def sniff_wide_text(head: bytes) -> str | None:
    """``"UTF-16"`` or ``"UTF-32"`` for wide text, ``"binary"`` for stray NUL bytes, None for 8-bit text.

    :param head: the first bytes of a file (a few KiB are enough).
    """
    encoding = next((name for bom, name in _WIDE_BOMS if head.startswith(bom)), None)
    if encoding is not None or b"\x00" not in head:
        return encoding
    # Wide text without a byte-order mark has a NUL in every other (UTF-16) or
    # three of four (UTF-32) bytes; a few stray NULs mean a binary or damaged file.
    nul_share = head.count(b"\x00") / len(head)
    return "UTF-32" if nul_share > 0.7 else "UTF-16" if nul_share > 0.3 else "binary"


def wide_text_advice(path: Path, kind: str) -> str:
    """The error text for what :func:`sniff_wide_text` found: what the file is and how to fix it."""
    if kind == "binary":
        return "it contains NUL bytes: it is binary or corrupt, not a text file; supply the original text file"
    return (
        f"the file is {kind} encoded; convert it to UTF-8, "
        f"e.g. `iconv -f {kind} -t UTF-8 {path} > {path.stem}-utf8{path.suffix}`"
    )


def detect_encoding(raw: bytes) -> str:
    """``"utf-8"`` if ``raw`` is valid UTF-8 (ASCII included), else ``"latin-1"``.

    Latin-1 text with accents is almost never valid UTF-8 (an accented letter
    would have to be followed by the right continuation bytes), so this tells a
    UTF-8 re-save from the latin-1 original.
    """
    try:
        raw.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"


def _line_of(raw: bytes, index: int) -> str:
    """Text of the ``index``-th (0-based) line, shortened for messages."""
    lines = raw.split(b"\n", index + 1)
    text = lines[index] if index < len(lines) else b""
    return text.decode("latin-1").rstrip("\r")[:120]


def _check_field_counts(raw: bytes, sep: bytes, n_fields: int, path: Path) -> None:
    data = np.frombuffer(raw, dtype=np.uint8)
    newlines = np.flatnonzero(data == 10)
    ends = np.append(newlines, len(data)) if (len(data) and data[-1] != 10) else newlines
    starts = np.concatenate(([0], ends[:-1] + 1)) if len(ends) else np.zeros(0, np.int64)
    lengths = ends - starts
    # a line holding only "\r" (CRLF file) is blank too
    blank = (lengths == 0) | ((lengths == 1) & (data[np.minimum(starts, max(len(data) - 1, 0))] == 13))
    seps = np.flatnonzero(data == sep[0]) if len(sep) == 1 else None
    if seps is None:  # pragma: no cover - callers pass single bytes
        raise ValueError("separator must be one byte")
    counts = np.searchsorted(seps, ends) - np.searchsorted(seps, starts) + 1
    bad = np.flatnonzero((counts != n_fields) & ~blank)
    if len(bad):
        i = int(bad[0])
        raise MalformedFileError(
            path,
            i + 1,
            f"expected {n_fields} fields separated by {sep.decode('latin-1')!r}, found {int(counts[i])}: "
            f"{_line_of(raw, i)!r}",
        )


def read_table(
    path: Path,
    sep: str,
    names: Sequence[str],
    numeric: Mapping[str, str],
    encoding: str = "utf-8",
    required: Sequence[str] = (),
) -> pd.DataFrame:
    """Read a header-less delimited file with an exact number of fields per line.

    Blank lines are skipped (line numbers still count them).

    :param path: the file.
    :param sep: field separator (one or more characters, taken literally).
    :param names: the column names; the number of fields every line must have.
    :param numeric: column name -> ``"int"`` or ``"float"``; such columns must
        hold a number on every line (``"int"``: an integral one).
    :param encoding: an 8-bit-compatible text encoding, or :data:`AUTO_ENCODING`
        (UTF-8 if valid, else latin-1; for the MovieLens item and user files).
    :param required: further (text) columns that may not be empty.
    :returns: the frame, indexed by 0-based line number (blank lines dropped).
    :raises MalformedFileError: naming the file and the first bad line, or
        saying that the file is UTF-16/UTF-32 or binary.
    """
    path = Path(path)
    raw = path.read_bytes()
    wide = sniff_wide_text(raw[:SNIFF_BYTES])
    if wide:
        raise MalformedFileError(path, None, wide_text_advice(path, wide))
    if raw.startswith(codecs.BOM_UTF8):  # a UTF-8 byte-order mark would stick to the first field
        raw = raw[len(codecs.BOM_UTF8):]
    if encoding == AUTO_ENCODING:
        encoding = detect_encoding(raw)
    sep_bytes = sep.encode(encoding)
    if len(sep_bytes) > 1:
        if _UNIT_SEPARATOR.encode() in raw:
            raise MalformedFileError(path, None, "unexpected control character 0x1F in the file")
        raw = raw.replace(sep_bytes, _UNIT_SEPARATOR.encode())
        sep, sep_bytes = _UNIT_SEPARATOR, _UNIT_SEPARATOR.encode()
    if not raw.strip():
        raise MalformedFileError(path, None, "the file is empty")
    _check_field_counts(raw, sep_bytes, len(names), path)

    text_columns = {i: str for i, n in enumerate(names) if n not in numeric}
    try:
        frame = pd.read_csv(
            io.BytesIO(raw),
            sep=sep,
            header=None,
            encoding=encoding,
            skip_blank_lines=False,  # keep one row per line, so row index = line - 1
            quoting=csv.QUOTE_NONE,
            keep_default_na=False,
            na_values=[""],
            dtype=text_columns,
            engine="c",
        )
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise MalformedFileError(path, None, str(err)) from err
    frame.columns = list(names)
    frame = frame[frame.notna().any(axis=1)]  # blank lines

    for name, kind in numeric.items():
        column = frame[name]
        if not pd.api.types.is_numeric_dtype(column):
            converted = pd.to_numeric(column, errors="coerce")
            bad = converted.isna() & column.notna()
            if bad.any():
                i = int(bad.idxmax())
                raise MalformedFileError(
                    path, i + 1, f"field {name!r} is not a number: {column.loc[i]!r} in {_line_of(raw, i)!r}"
                )
            column = converted
        if column.isna().any():
            i = int(column.isna().idxmax())
            raise MalformedFileError(path, i + 1, f"field {name!r} is empty: {_line_of(raw, i)!r}")
        if kind == "int" and not pd.api.types.is_integer_dtype(column):
            fractional = column != np.floor(column)
            if fractional.any():
                i = int(fractional.idxmax())
                raise MalformedFileError(
                    path, i + 1, f"field {name!r} must be an integer: {float(column.loc[i])!r} in {_line_of(raw, i)!r}"
                )
            column = column.astype(np.int64)
        frame[name] = column.astype(np.int64 if kind == "int" else np.float64)
    for name in required:
        empty = frame[name].isna()
        if empty.any():
            i = int(empty.idxmax())
            raise MalformedFileError(path, i + 1, f"field {name!r} is empty: {_line_of(raw, i)!r}")
    return frame


def check_values(frame: pd.DataFrame, column: str, allowed: Sequence[float], path: Path) -> None:
    """Raise :class:`MalformedFileError` at the first value of ``column`` not in ``allowed``.

    :param frame: as returned by :func:`read_table` (index = 0-based line number).
    """
    values = frame[column].to_numpy()
    bad = ~np.isin(values, np.asarray(allowed, dtype=values.dtype))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        line = int(frame.index[i])
        value = values[i].item() if isinstance(values[i], np.generic) else values[i]
        raise MalformedFileError(path, line + 1, f"{column} {value!r} is not one of {list(allowed)}")
