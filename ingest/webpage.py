"""HTML bytes -> the page's main text as Markdown, its headings as sections.

trafilatura extracts the main content (navigation, footers, cookie banners and ads go):
it is actively maintained, scores at the top of the published main-text extraction
comparisons (ScrapingHub's article-extraction benchmark, Bevendorff et al. 2023), works
offline on a string, and writes Markdown whose '#' headings our Markdown heading finder
already turns into sections. Readability-style extractors keep less structure, and plain
HTML-to-text converters keep the boilerplate.
"""

from __future__ import annotations

import logging

from core.errors import PGPTError
from ingest.models import Page, ParsedDocument
from ingest.parse_helpers import corrupt_error, require_text
from ingest.text import decode_text, find_markdown_headings

# trafilatura and its helpers log parsing oddities, some quoting the page; keep them quiet.
for _name in ("trafilatura", "htmldate", "courlan", "justext"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)

MEDIA_TYPE = "text/html"
LABEL = "HTML page"


def parse_html(data: bytes, filename: str, *, max_pages: int) -> ParsedDocument:
    """One page: the main text, in Markdown so headings and tables keep their shape."""
    del max_pages  # one page
    import trafilatura

    try:
        html = decode_text(data, filename)
    except PGPTError as exc:
        raise corrupt_error(filename, LABEL, exc) from None
    if "<" not in html:
        raise corrupt_error(filename, LABEL, None)
    try:
        # favor_recall: short private pages (a saved letter) are main text too.
        text = trafilatura.extract(
            html,
            output_format="markdown",
            include_tables=True,
            include_comments=False,
            include_links=False,
            include_images=False,
            favor_recall=True,
            with_metadata=False,
        ) or trafilatura.html2txt(html)
    except Exception as exc:  # lxml errors on markup it cannot repair
        raise corrupt_error(filename, LABEL, exc) from None
    pages = (Page(1, (text or "").strip()),)
    require_text(pages, filename, LABEL)
    return ParsedDocument(
        filename=filename,
        media_type=MEDIA_TYPE,
        pages=pages,
        headings=find_markdown_headings(pages),
        page_unit="document",
    )
