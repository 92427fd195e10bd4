"""One parse of a PDF in every text mode the financebench benchmark compares.

Kept apart from the benchmark so that a parser worker imports only the PDF libraries and
ingest/, never torch or FAISS (the workers run under an address-space cap).
"""

from __future__ import annotations

from ingest.models import ParsedDocument
from ingest.pdf import count_pdf_pages, extract_pdf_pages, looks_tabular, pdf_document

COMPARED_MODES = ("plain", "auto", "pdfium")


def parse_text_modes(data: bytes, filename: str, max_pages: int) -> dict[str, ParsedDocument]:
    """Runs in a parser worker: the document as parse_pdf gives it in each compared mode.

    'auto' re-reads in layout mode only the pages whose plain text looks like a table, so
    its plain pages are the 'plain' mode's.
    """
    pages = count_pdf_pages(data, filename, max_pages=max_pages)
    plain = extract_pdf_pages(data, filename, first=1, last=pages, text_mode="plain")
    layout = [
        extract_pdf_pages(data, filename, first=n, last=n, text_mode="layout")[0]
        if looks_tabular(text)
        else text
        for n, text in enumerate(plain, start=1)
    ]
    pdfium = extract_pdf_pages(data, filename, first=1, last=pages, text_mode="pdfium")
    texts = {"plain": plain, "auto": layout, "pdfium": pdfium}
    return {mode: pdf_document(filename, texts[mode]) for mode in COMPARED_MODES}
