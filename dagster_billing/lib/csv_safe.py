"""CSV files that people open in spreadsheets: every writer of one goes through `write_csv`.

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to Excel,
LibreOffice and Google Sheets, and account names, dimension values (event properties) and
descriptions come from outside. So such a cell is written with a leading `'`, which the
spreadsheet shows as text (OWASP, "CSV Injection"). Numbers are left alone: `-12.50` is a credit,
not a formula. The warehouse keeps the values as they are; only the CSV text changes.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def safe_cell(value: object) -> str:
    """The text of one cell: None is empty; a would-be formula gets a leading quote."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    """A UTF-8 CSV with "\\n" line ends, every cell through `safe_cell`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([safe_cell(name) for name in header])
        writer.writerows([safe_cell(value) for value in row] for row in rows)
    return path
