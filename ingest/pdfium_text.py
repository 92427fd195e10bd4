"""A PDF's text as PDFium reads it: each printed line on one line, paragraphs and table
sections apart, words hyphenated at a line end marked for the cleanup to rejoin."""

from __future__ import annotations

import ctypes
import logging
import re

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c

log = logging.getLogger(__name__)

# PDFium writes U+FFFE (U+0002 in older builds) where a word is hyphenated across a line
# and drops the line break; as "-\n" the cleanup rejoins it as it does pypdf's text.
_PDFIUM_LINE_HYPHEN = re.compile("[\x02\ufffe]")
_PDFIUM_LINE_BREAK = re.compile("\r\n")
# A gap between two lines larger than this share of the upper line's font height is a
# paragraph break (line spacing leaves 0-0.3; paragraphs and table sections more).
PARAGRAPH_GAP = 0.5


def pdfium_texts(data: bytes, password: str | None, first: int, last: int) -> list[str]:
    document = _pdfium_open(data, password)
    texts: list[str] = []
    try:
        for number in range(first, last + 1):
            try:
                page = document[number - 1]
                textpage = page.get_textpage()
                text = _text_with_paragraphs(textpage)
                textpage.close()
                page.close()
            except pdfium.PdfiumError as exc:
                log.warning("page %d could not be read (%s); kept as empty", number, exc)
                text = ""
            texts.append(_PDFIUM_LINE_HYPHEN.sub("-\n", text))
    finally:
        document.close()
    return texts


def _text_with_paragraphs(textpage: pdfium.PdfTextPage) -> str:
    """The page's text, a blank line where the next line starts further down than line
    spacing would put it (a paragraph or a table's section): PDFium ends every line alike,
    and the chunker and the heading finder rely on the blank lines pypdf's text has."""
    text: str = textpage.get_text_range()  # one character per character index
    pieces: list[str] = []
    last = 0
    for end_of_line in _PDFIUM_LINE_BREAK.finditer(text):
        before, after = end_of_line.start(), end_of_line.end()
        above = _first_box(textpage, range(before - 1, max(before - 4, -1), -1))
        below = _first_box(textpage, range(after, min(after + 3, len(text))))
        pieces.append(text[last : end_of_line.start()])
        paragraph = (
            above is not None
            and below is not None
            and above.bottom - below.top > PARAGRAPH_GAP * (above.top - above.bottom)
        )
        pieces.append("\n\n" if paragraph else "\n")
        last = end_of_line.end()
    pieces.append(text[last:])
    return "".join(pieces)


def _first_box(textpage: pdfium.PdfTextPage, indices: range) -> pdfium_c.FS_RECTF | None:
    """The font-sized box of the first of ``indices`` (valid character indices) that has
    one (generated spaces and line ends have none)."""
    for index in indices:
        box = pdfium_c.FS_RECTF()
        found = pdfium_c.FPDFText_GetLooseCharBox(textpage.raw, index, ctypes.byref(box))
        if found and box.top > box.bottom:
            return box
    return None


def _pdfium_open(data: bytes, password: str | None) -> pdfium.PdfDocument:
    """pypdf has already opened the file with ``password`` or, failing that, with none."""
    try:
        return pdfium.PdfDocument(data, password=password)
    except pdfium.PdfiumError:
        if password is None:
            raise
        return pdfium.PdfDocument(data)
