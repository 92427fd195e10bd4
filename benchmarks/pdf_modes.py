"""One parse of a PDF in both of the text modes the financebench benchmark compares.

Kept apart from the benchmark so that a parser worker imports only pypdf and ingest/,
never torch or FAISS (the workers run under an address-space cap).
"""

from __future__ import annotations

import io

from pypdf import PdfReader

from ingest.models import Page, ParsedDocument
from ingest.pdf import clean_pages, looks_tabular


def parse_both_modes(data: bytes, filename: str, max_pages: int) -> dict[str, ParsedDocument]:
    """Runs in a parser worker: the document as parse_pdf gives it in 'plain' and 'auto'."""
    reader = PdfReader(io.BytesIO(data), strict=False)
    if len(reader.pages) > max_pages:
        raise ValueError(f"{filename} has more than {max_pages} pages")
    plain = [page.extract_text() for page in reader.pages]
    auto = [
        page.extract_text(extraction_mode="layout") if looks_tabular(text) else text
        for page, text in zip(reader.pages, plain, strict=True)
    ]
    return {
        mode: ParsedDocument(
            filename=filename,
            media_type="application/pdf",
            pages=tuple(Page(n, t) for n, t in enumerate(clean_pages(texts), start=1)),
        )
        for mode, texts in (("plain", plain), ("auto", auto))
    }
