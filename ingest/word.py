"""Word (.docx) bytes -> one page of text: paragraphs, headings as sections, tables as rows."""

from __future__ import annotations

import io
import re

from core.errors import PGPTError
from ingest.models import ParsedDocument
from ingest.parse_helpers import (
    PageBuilder,
    corrupt_error,
    labelled_row,
    open_office_zip,
    require_text,
)

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
LABEL = "Word document"
_HEADING_STYLE = re.compile(r"^heading (\d)$", re.IGNORECASE)


def parse_docx(data: bytes, filename: str, *, max_pages: int) -> ParsedDocument:
    """Word has no fixed pages: the document is one page and its headings give the place."""
    del max_pages  # one page, whatever its length; the chunk budget bounds the text
    open_office_zip(data, filename, LABEL).close()
    try:
        page = _read(data)
    except PGPTError:
        raise
    except Exception as exc:  # python-docx raises KeyError, lxml and ZIP errors on damage
        raise corrupt_error(filename, LABEL, exc) from None
    pages = (page.page(),)
    require_text(pages, filename, LABEL)
    return ParsedDocument(
        filename=filename,
        media_type=MEDIA_TYPE,
        pages=pages,
        headings=tuple(page.headings),
        page_unit="document",
    )


def _read(data: bytes) -> PageBuilder:
    from docx import Document
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = Document(io.BytesIO(data))
    page = PageBuilder(1)
    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            level = _heading_level(block)
            if level is not None:
                page.heading(block.text, level)
            else:
                page.add(block.text)
        elif isinstance(block, Table):
            rows = [[cell.text.strip() for cell in row.cells] for row in block.rows]
            if rows:
                header, body = rows[0], rows[1:]
                page.add("\n".join(labelled_row(header, row) for row in body) or " | ".join(header))
    return page


def _heading_level(paragraph: object) -> int | None:
    style = getattr(paragraph, "style", None)
    name = str(getattr(style, "name", "") or "")
    if name.lower() == "title":
        return 1
    match = _HEADING_STYLE.match(name)
    return int(match.group(1)) if match else None
