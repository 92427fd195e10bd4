"""ingest.text: encodings, form-feed pages and Markdown headings."""

from __future__ import annotations

import codecs
import random

import pytest

from core.errors import DocumentTooComplexError, EmptyDocumentError, UnsupportedFileTypeError
from ingest.models import Heading, ParsedDocument
from ingest.text import parse_text

FRENCH = "Café crème à la française. Élève naïf, où êtes-vous? Déjà été là.\n"
GERMAN = "Grüße aus München! Die Straße ist schön, das Wetter übermäßig heiß.\n"
RUSSIAN = "Привет, как дела? Это тестовый документ на русском языке.\n"


def plain(data: bytes, filename: str = "notes.txt", max_pages: int = 2000) -> ParsedDocument:
    return parse_text(data, filename, markdown=False, max_pages=max_pages)


def markdown(text: str, filename: str = "notes.md") -> ParsedDocument:
    return parse_text(text.encode(), filename, markdown=True, max_pages=2000)


# --- encodings ----------------------------------------------------------------------


def test_utf8_is_one_page() -> None:
    doc = plain("Hello wörld — ünïcode ✓\nSecond line\n".encode())
    assert doc.media_type == "text/plain"
    assert doc.filename == "notes.txt"
    assert [(page.number, page.text) for page in doc.pages] == [
        (1, "Hello wörld — ünïcode ✓\nSecond line\n")
    ]
    assert doc.headings == ()


def test_utf8_bom_is_dropped() -> None:
    assert plain(codecs.BOM_UTF8 + FRENCH.encode()).pages[0].text == FRENCH


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_with_bom(encoding: str) -> None:
    bom = {
        "utf-16-le": codecs.BOM_UTF16_LE,
        "utf-16-be": codecs.BOM_UTF16_BE,
    }.get(encoding, b"")
    data = bom + (FRENCH + RUSSIAN).encode(encoding)  # "utf-16"/"utf-32" add their own BOM
    assert plain(data).pages[0].text == FRENCH + RUSSIAN


@pytest.mark.parametrize("text", [FRENCH, GERMAN, "naïve résumé, coöperate"])
def test_latin1(text: str) -> None:
    assert plain(text.encode("latin-1")).pages[0].text == text


def test_windows_1251_cyrillic() -> None:
    assert plain(RUSSIAN.encode("cp1251")).pages[0].text == RUSSIAN


def test_windows_newlines_are_normalized() -> None:
    assert plain(b"one\r\ntwo\rthree\n").pages[0].text == "one\ntwo\nthree\n"


def test_binary_data_is_not_text() -> None:
    data = b"\x89PNG\r\n\x1a\n" + random.Random(3).randbytes(4000)
    with pytest.raises(UnsupportedFileTypeError) as caught:
        plain(data, "photo.txt")
    assert caught.value.filename == "photo.txt"
    assert "'photo.txt' is not readable text" in caught.value.message
    assert "UTF-8" in caught.value.message


def test_broken_utf16_after_bom_is_not_text() -> None:
    data = codecs.BOM_UTF16_LE + "ok".encode("utf-16-le") + b"\x00\xd8"  # lone surrogate
    with pytest.raises(UnsupportedFileTypeError) as caught:
        plain(data, "broken.txt")
    assert "'broken.txt'" in caught.value.message


@pytest.mark.parametrize("data", [b"", b"   \n\t\n", b"\f\f"])
def test_empty_text(data: bytes) -> None:
    with pytest.raises(EmptyDocumentError) as caught:
        plain(data, "blank.txt")
    assert caught.value.filename == "blank.txt"
    assert "'blank.txt' contains no text" in caught.value.message


# --- pages --------------------------------------------------------------------------


def test_form_feeds_separate_pages() -> None:
    doc = plain(b"first page\fsecond page\f\fthird after an empty one\f")
    assert [(page.number, page.text) for page in doc.pages] == [
        (1, "first page"),
        (2, "second page"),
        (3, ""),
        (4, "third after an empty one"),
    ]


def test_too_many_pages() -> None:
    with pytest.raises(DocumentTooComplexError) as caught:
        plain(b"p\f" * 20 + b"last", "many.txt", max_pages=10)
    assert "'many.txt' has 21 pages" in caught.value.message


# --- Markdown -----------------------------------------------------------------------

GUIDE = """Preface before any heading.

# Intro
Welcome.

## Background
Some history.

```python
# not a heading: a comment in a code block
```

## Method ##
Steps.
~~~~
# still code
~~~
# still code: a shorter fence does not close a longer one
~~~~
#hashtag is not a heading
### Details
Fine print.
\f# Results
Numbers.
"""


def test_markdown_headings_outside_code_blocks() -> None:
    doc = markdown(GUIDE)
    assert doc.media_type == "text/markdown"
    assert [(h.page, h.level, h.title) for h in doc.headings] == [
        (1, 1, "Intro"),
        (1, 2, "Background"),
        (1, 2, "Method"),
        (1, 3, "Details"),
        (2, 1, "Results"),
    ]


def test_markdown_heading_offsets_point_at_the_heading_line() -> None:
    doc = markdown(GUIDE)
    for heading in doc.headings:
        line = doc.pages[heading.page - 1].text[heading.offset :].split("\n", 1)[0]
        assert line.startswith("#" * heading.level + " " + heading.title)


def test_plain_text_has_no_headings() -> None:
    assert plain(GUIDE.encode(), "guide.txt").headings == ()


def test_heading_type_is_the_model_type() -> None:
    assert all(isinstance(h, Heading) for h in markdown("# A\n## B\n").headings)
