"""Reading numeric spreadsheets (Jester's .xls / .xlsx) into a float matrix.

openpyxl needs about 30 s for Jester-4's 1.2 million cells. A worksheet that
is a plain dense grid of numbers (which the official Jester sheets are) is
read here directly from its XML in about a second; the fast path checks that
the sheet really is such a grid (every cell numeric, every row complete, cell
references in order) and otherwise falls back to ``pandas.read_excel``.
"""

from __future__ import annotations

import logging
import re
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recgym.data.errors import MalformedFileError

log = logging.getLogger(__name__)

#: What to do about an unreadable spreadsheet, appended to the error.
REFETCH_ADVICE = (
    "delete it and download or copy the original again (for the registered Jester data: "
    "`recgym datasets fetch jester` or `recgym datasets fetch jester-4`)"
)

_SHEET = "xl/worksheets/sheet1.xml"
_VALUE = re.compile(rb"<v>([^<]*)</v>")
_REF = re.compile(rb'<c r="([A-Z]+[0-9]+)"')
_TYPED = re.compile(rb' t="(?!n")')  # any cell type but the explicit numeric one


def _column_letters(index: int) -> bytes:
    """0 -> A, 25 -> Z, 26 -> AA (spreadsheet column names)."""
    out = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        out = chr(65 + rem) + out
    return out.encode()


def _fast_xlsx_grid(path: Path) -> np.ndarray | None:
    """The first sheet as a float matrix, or None if it is not a dense numeric grid."""
    try:
        with zipfile.ZipFile(path) as zf:
            if _SHEET not in zf.namelist():
                return None
            data = zf.read(_SHEET)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError):
        return None  # damaged: read_excel below reports it with the path
    start, end = data.find(b"<sheetData>"), data.find(b"</sheetData>")
    if start < 0 or end < 0:
        return None
    body = data[start + len(b"<sheetData>") : end]
    # typed cells (shared strings, booleans, errors, inline strings) or formulas: let openpyxl decide
    if _TYPED.search(body) or b"<f" in body or b"<is>" in body:
        return None
    values = _VALUE.findall(body)
    refs = _REF.findall(body)
    n_rows = body.count(b"<row ")
    if not values or n_rows == 0 or len(values) != len(refs) or len(refs) % n_rows:
        return None
    n_cols = len(refs) // n_rows
    letters = [_column_letters(i) for i in range(n_cols)]
    expected = [col + b"%d" % row for row in range(1, n_rows + 1) for col in letters]
    if refs != expected:  # sparse rows, gaps or a header offset
        return None
    grid = np.fromiter(map(float, values), dtype=np.float64, count=len(values))
    return grid.reshape(n_rows, n_cols)


def read_excel(path: Path, **kwargs: Any) -> pd.DataFrame:
    """:func:`pandas.read_excel`, with a damaged or mislabelled file reported by path.

    :param path: the .xls/.xlsx file.
    :param kwargs: passed to :func:`pandas.read_excel`.
    :raises MalformedFileError: the file is truncated, corrupt or not a spreadsheet.
    """
    try:
        return pd.read_excel(path, **kwargs)
    except ImportError:  # a missing reader (openpyxl, xlrd) is an installation problem, not the file's
        raise
    except Exception as err:
        # The readers fail on damaged files with a zoo of types (BadZipFile,
        # XLRDError, KeyError, ValueError, zlib.error, ...), none naming the file.
        raise MalformedFileError(
            path, None,
            f"the file is truncated, corrupt or not an .xlsx/.xls spreadsheet ({type(err).__name__}: {err}); "
            + REFETCH_ADVICE,
        ) from err


def read_numeric_sheet(path: Path) -> np.ndarray:
    """The first worksheet of an .xls/.xlsx file as a float matrix (NaN = empty or text cell).

    :param path: the spreadsheet (.xlsx read natively or by openpyxl, .xls by xlrd).
    :raises MalformedFileError: the file is truncated, corrupt or not a spreadsheet.
    """
    path = Path(path)
    if path.suffix.lower() == ".xlsx":
        grid = _fast_xlsx_grid(path)
        if grid is not None:
            return grid
        log.info("%s is not a plain numeric grid; reading it with openpyxl (slow)", path)
    frame = read_excel(path, header=None, sheet_name=0)
    return frame.apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)


def read_text_column(path: Path) -> list[str]:
    """The first column of the first sheet as strings (Jester joke texts), one per row."""
    frame = read_excel(path, header=None, sheet_name=0, dtype=str)
    return [("" if pd.isna(v) else str(v)).strip() for v in frame.iloc[:, 0]]
