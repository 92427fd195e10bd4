"""What ingestion produces: pages of a parsed document, then chunks of those pages."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Page:
    """One page as a reader sees it; ``number`` counts from 1."""

    number: int
    text: str


@dataclass(frozen=True, slots=True)
class Heading:
    """A section heading (Markdown, Word, HTML, a sheet's name): where it starts and how
    deep it is."""

    page: int
    offset: int
    level: int
    title: str


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    filename: str
    media_type: str  # "application/pdf", "text/plain", "text/markdown", "image/png", ...
    pages: tuple[Page, ...]
    headings: tuple[Heading, ...] = field(default_factory=tuple)
    # What a page is called in citations: "page", "slide" (PPTX) or "sheet" (XLSX).
    page_unit: str = "page"
    # Numbers of the pages whose text was read by OCR (scans and images).
    ocr_pages: tuple[int, ...] = field(default_factory=tuple)

    @property
    def page_count(self) -> int:
        return len(self.pages)


@dataclass(frozen=True, slots=True, repr=False)
class SourceDocument:
    """What a session keeps of an uploaded file to show its pages: the bytes as uploaded,
    the pages parsed from them, and the password that opens them. Memory only."""

    data: bytes
    media_type: str
    pages: tuple[Page, ...]
    password: str | None = None

    def __repr__(self) -> str:  # never the content, nor the password
        return f"SourceDocument({self.media_type}, {len(self.data)} bytes, {len(self.pages)} pages)"

    @property
    def memory_bytes(self) -> int:
        """The bytes plus the parsed page text, as Python holds it."""
        return len(self.data) + sum(sys.getsizeof(page.text) for page in self.pages)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A passage of one document.

    ``page``/``char_start`` locate its first character, ``page_end``/``char_end``
    one past its last; a chunk that crosses a page break keeps both pages.
    ``context`` is a short header about where the passage sits (document, period,
    page heading): embedded and indexed with ``text`` but never shown or cited, so
    every offset into ``text`` stays exact.
    """

    document_id: str
    filename: str
    text: str
    page: int
    page_end: int
    char_start: int
    char_end: int
    section: str | None = None
    context: str = ""

    @property
    def indexed_text(self) -> str:
        """What the embedder and BM25 see: the context header, then the passage."""
        return f"{self.context}\n{self.text}" if self.context else self.text

    page_unit: str = "page"
    ocr: bool = False  # some of its text was read by OCR

    def locate(self, offset: int) -> tuple[int, int]:
        """(page, offset within that page) of the character at ``offset`` in ``text``.

        In a chunk that crosses a page break, the last ``char_end`` characters are on
        ``page_end``; the rest is on ``page``.
        """
        last_page_starts = len(self.text) - self.char_end
        if self.page != self.page_end and offset >= last_page_starts:
            return self.page_end, offset - last_page_starts
        return self.page, self.char_start + offset

    @property
    def pages_label(self) -> str:
        return str(self.page) if self.page == self.page_end else f"{self.page}-{self.page_end}"
