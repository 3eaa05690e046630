"""The fast numeric .xlsx reader agrees with openpyxl and falls back when the sheet is not a plain grid."""

from __future__ import annotations

import numpy as np
import openpyxl
import pandas as pd
import pytest

from recgym.data import MalformedFileError, load
from recgym.data.spreadsheet import _fast_xlsx_grid, read_numeric_sheet
from tests.test_data_support import isolated_cache  # noqa: F401


def _xlsx(path, rows):
    wb = openpyxl.Workbook()
    for row in rows:
        wb.active.append(row)
    wb.save(path)
    return path


def test_fast_reader_on_numeric_grid(tmp_path):
    path = _xlsx(tmp_path / "grid.xlsx", [[2, 1.5, 99, -3.25], [1, 99, 99, 10], [0, 99, 99, 99]])
    grid = _fast_xlsx_grid(path)
    assert grid is not None
    np.testing.assert_array_equal(grid, pd.read_excel(path, header=None).to_numpy(float))


def test_fallback_for_text_and_gaps(tmp_path):
    text = _xlsx(tmp_path / "text.xlsx", [[1, "x", 99], [1, 2.5, 99]])
    assert _fast_xlsx_grid(text) is None
    assert np.isnan(read_numeric_sheet(text)[0, 1])
    with pytest.raises(MalformedFileError, match=r"row 1, column 2: empty cell or not a number"):
        load("jester", path=text)
    gaps = _xlsx(tmp_path / "gaps.xlsx", [[1, None, 3.0], [1, 2.0, 99]])
    assert _fast_xlsx_grid(gaps) is None
    with pytest.raises(MalformedFileError, match=r"row 1"):
        load("jester", path=gaps)


def test_jester_layout_from_xlsx(tmp_path):
    path = _xlsx(tmp_path / "mine.xlsx", [[2, 1.5, 99, -3.25], [1, 99, 99, 10]])
    log = load("jester", path=path)
    assert (len(log), log.n_users, log.n_items) == (3, 2, 2)


@pytest.mark.slow
def test_fast_reader_matches_openpyxl_on_jester4(data_dir):
    path = data_dir / "jester" / "dataset4" / "jester.xlsx"
    np.testing.assert_array_equal(_fast_xlsx_grid(path), pd.read_excel(path, header=None).to_numpy(float))
