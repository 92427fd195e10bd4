"""Spreadsheets: Excel (.xlsx) sheets and CSV files -> one page per sheet, rows with their
header names ('Region: North; Revenue: 4.2'), the sheet's name as its section."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from core.errors import PGPTError
from ingest.models import Heading, Page, ParsedDocument
from ingest.parse_helpers import (
    PageBuilder,
    check_page_count,
    corrupt_error,
    labelled_row,
    open_office_zip,
    require_text,
)
from ingest.text import decode_text

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPE = "text/csv"
XLSX_LABEL = "Excel workbook"
CSV_LABEL = "CSV file"


def parse_xlsx(data: bytes, filename: str, *, max_pages: int) -> ParsedDocument:
    open_office_zip(data, filename, XLSX_LABEL).close()
    try:
        sheets = _read_workbook(data)
    except PGPTError:
        raise
    except Exception as exc:  # openpyxl raises KeyError, lxml and ZIP errors on damage
        raise corrupt_error(filename, XLSX_LABEL, exc) from None
    check_page_count(len(sheets), max_pages, filename, "sheet")
    return _document(filename, XLSX_MEDIA_TYPE, XLSX_LABEL, sheets)


def parse_csv(data: bytes, filename: str, *, max_pages: int) -> ParsedDocument:
    """A CSV file is one sheet, named after the file."""
    del max_pages  # always one sheet
    try:
        text = decode_text(data, filename)
        dialect = _sniff(text)
        rows = [row for row in csv.reader(io.StringIO(text), dialect)]
    except PGPTError as exc:
        raise corrupt_error(filename, CSV_LABEL, exc) from None
    except (csv.Error, ValueError) as exc:
        raise corrupt_error(filename, CSV_LABEL, exc) from None
    name = filename.rsplit(".", 1)[0] or filename
    return _document(filename, CSV_MEDIA_TYPE, CSV_LABEL, [(name, rows)])


def _read_workbook(data: bytes) -> list[tuple[str, list[list[str]]]]:
    from openpyxl import load_workbook

    # data_only: the values Excel last computed, not the formulas.
    workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        return [
            (sheet.title, _rows(sheet.iter_rows(values_only=True))) for sheet in workbook.worksheets
        ]
    finally:
        workbook.close()


def _document(
    filename: str, media_type: str, label: str, sheets: Sequence[tuple[str, list[list[str]]]]
) -> ParsedDocument:
    pages: list[Page] = []
    headings: list[Heading] = []
    has_rows = False
    for number, (name, rows) in enumerate(sheets, start=1):
        page = PageBuilder(number)
        page.heading(name, 1)
        filled = [row for row in rows if any(cell.strip() for cell in row)]
        if filled:
            header, body = [cell.strip() for cell in filled[0]], filled[1:]
            for row_number, row in enumerate(body, start=2):
                line = labelled_row(header, [cell.strip() for cell in row])
                if line:
                    # One row per block: passages break between rows, never inside one.
                    page.add(f"Row {row_number}: {line}")
                    has_rows = True
            if not body:
                page.add(" | ".join(header))
                has_rows = True
        pages.append(page.page())
        headings.extend(page.headings)
    if not has_rows:
        require_text((), filename, label)  # raises: sheet names alone are no content
    return ParsedDocument(
        filename=filename,
        media_type=media_type,
        pages=tuple(pages),
        headings=tuple(headings),
        page_unit="sheet",
    )


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime) and value.time() == datetime.min.time():
        return value.date().isoformat()
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _sniff(text: str) -> type[csv.Dialect] | csv.Dialect:
    sample = text[:8192]
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        return csv.excel


def _rows(rows: Iterable[Sequence[Any]]) -> list[list[str]]:
    return [[_cell(value) for value in row] for row in rows]
