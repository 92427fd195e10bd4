"""Short context headers for chunks: which document, which period, which part of it.

A passage from the middle of a cash-flow table says nothing about the company or the
year it belongs to, yet questions name exactly those. The header is built from the
document itself (its name, its title and reporting period from the first pages, the
heading of the page or Markdown section a chunk sits under) and is embedded and
BM25-indexed with the chunk, never shown: the chunk's text and offsets are untouched.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ingest.models import ParsedDocument

HEADER_MAX_TOKENS = 48
SEPARATOR = " | "
TITLE_PAGES = 2  # where a document's title and period are looked for
MAX_TITLE_CHARS = 160
MAX_HEADING_CHARS = 90
HEADING_LINES = 2  # heading lines kept per page
TOP_LINES = 5  # a page's heading is among its first lines

_STEM_SEPARATORS = re.compile(r"[_\s]+")
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,5}$")
# SEC filings' cover page: the registrant's name sits above this line.
_REGISTRANT = re.compile(r"\(?\s*exact name of (?:the )?registrant", re.IGNORECASE)
_FORM = re.compile(r"\bFORM\s+(10-K|10-Q|20-F|40-F|8-K|S-1|6-K)\b", re.IGNORECASE)
_PERIOD = re.compile(
    r"\b(?:for the )?(fiscal year|year|quarterly period|quarter|period|six months|nine months)"
    r"\s+ended\s+([A-Z][a-z]+\.?\s+\d{1,2}\s*,?\s*\d{4})",
    re.IGNORECASE,
)
_SPACES = re.compile(r"\s+")
_NUMBER = re.compile(r"\d+")
RUNNING_PAGES = 4  # pages a line must run on, page number and all, to be a running header
PAGE_NUMBER_DIGITS = 6
# A cover page's rule, drawn as a run of underscores, can share a line with the name.
_RULE = re.compile(r"_{3,}")
SHORT_LINE_WORDS = 6
_FUNCTION_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "or",
        "the",
        "of",
        "to",
        "in",
        "for",
        "with",
        "by",
        "on",
        "at",
        "from",
        "as",
        "that",
        "which",
        "our",
        "its",
        "their",
        "is",
        "are",
        "be",
    ]
)
_LETTER = re.compile(r"[A-Za-z]")
# Lines repeated on many pages that say nothing about the page.
_BOILERPLATE = re.compile(
    r"^(?:table of contents|index|contents|page \d+|\d+|part [ivx]+)$", re.IGNORECASE
)


def document_header(document: ParsedDocument) -> str:
    """Name, title, form and period of a document, from its filename and first pages."""
    stem = _STEM_SEPARATORS.sub(" ", _EXTENSION.sub("", document.filename)).strip()
    parts = [stem]
    first_pages = "\n".join(page.text for page in document.pages[:TITLE_PAGES])
    title = _registrant(first_pages) or _first_title_line(first_pages)
    if title and title.lower() not in stem.lower():
        parts.append(title)
    form = _FORM.search(first_pages)
    if form:
        parts.append(f"Form {form.group(1).upper()}")
    period = _PERIOD.search(first_pages)
    if period:
        kind = period.group(1).lower()
        parts.append(f"{kind} ended {_SPACES.sub(' ', period.group(2))}")
    return SEPARATOR.join(parts)


def page_headings(document: ParsedDocument) -> dict[int, str]:
    """Page number -> the heading the page sits under: its own top heading lines, else
    the last heading of an earlier page."""
    running = _running_lines(document)
    headings: dict[int, str] = {}
    current = ""
    for page in document.pages:
        lines = _heading_lines(page.text, running)
        if lines:
            current = "; ".join(lines)
        headings[page.number] = current
    return headings


class ContextHeaders:
    """Headers per page of one document, each cut to ``HEADER_MAX_TOKENS`` tokens."""

    def __init__(self, document: ParsedDocument, count_tokens: Callable[[str], int]) -> None:
        self._count_tokens = count_tokens
        self._document = document_header(document)
        self._headings = page_headings(document) if document.media_type != "text/markdown" else {}
        self._cache: dict[tuple[int, str | None], str] = {}

    def for_chunk(self, page: int, section: str | None) -> str:
        """The header of a chunk starting on ``page``, under Markdown ``section`` if any."""
        key = (page, section)
        header = self._cache.get(key)
        if header is None:
            where = section or self._headings.get(page, "")
            header = self._fit(SEPARATOR.join(p for p in (self._document, where) if p))
            self._cache[key] = header
        return header

    def _fit(self, header: str) -> str:
        words = header.split(" ")
        while words and self._count_tokens(" ".join(words)) > HEADER_MAX_TOKENS:
            words.pop()
        return " ".join(words)


def _registrant(text: str) -> str | None:
    lines = [line.strip() for line in text.split("\n")]
    for number, line in enumerate(lines):
        if _REGISTRANT.search(line):
            for previous in reversed(lines[max(0, number - 3) : number]):
                candidate = _name_before_registrant(previous)
                if _LETTER.search(candidate) and len(candidate) <= MAX_TITLE_CHARS:
                    return _SPACES.sub(" ", candidate)
            before = _name_before_registrant(line)
            if _LETTER.search(before) and len(before) <= MAX_TITLE_CHARS:
                return _SPACES.sub(" ", before)
    return None


def _name_before_registrant(line: str) -> str:
    """The text before "(Exact name of registrant...", after any rule drawn before it."""
    return _RULE.split(_REGISTRANT.split(line)[0])[-1].strip(" (")


def _first_title_line(text: str) -> str | None:
    for line in text.split("\n")[:20]:
        line = line.strip()
        if _is_heading(line, MAX_TITLE_CHARS):
            return line
    return None


def _running_lines(document: ParsedDocument) -> frozenset[str]:
    """Shapes (digits as '#') of top lines that carry the page's own number, such as
    '47700 Federal Register / Vol. 85, No. 152 / Proposed Rules': a running header or
    footer, the same on every page, says nothing about the page it is on."""
    pages: dict[tuple[str, int, int], int] = {}
    for page in document.pages:
        for line in _top_lines(page.text):
            shape = _NUMBER.sub("#", line)
            for position, number in enumerate(_NUMBER.findall(line)):
                if len(number) > PAGE_NUMBER_DIGITS:
                    continue  # no page number, and int() refuses over 4,300 digits
                # The printed page number runs with the page: a constant offset.
                key = (shape, position, int(number) - page.number)
                pages[key] = pages.get(key, 0) + 1
    return frozenset(shape for (shape, _, _), count in pages.items() if count >= RUNNING_PAGES)


def _top_lines(text: str) -> list[str]:
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n")[:TOP_LINES])
    return [line for line in lines if line]


def _heading_lines(text: str, running: frozenset[str] = frozenset()) -> list[str]:
    found: list[str] = []
    for line in _top_lines(text):
        if _BOILERPLATE.match(line) or _NUMBER.sub("#", line) in running:
            continue
        if not _is_heading(line, MAX_HEADING_CHARS):
            break  # body text starts: what follows is not a heading
        found.append(line)
        if len(found) == HEADING_LINES:
            break
    return found


def _is_heading(line: str, max_chars: int) -> bool:
    """Short, starts like a title, does not end like a sentence, mostly letters."""
    if not line or len(line) > max_chars or line.endswith((",", ";", ":")):
        return False
    words = line.split()
    if line.endswith(".") and len(words) > SHORT_LINE_WORDS:
        return False  # a sentence; 'AMAZON.COM, INC.' is a name
    if words[-1].lower() in _FUNCTION_WORDS:
        return False  # a line broken mid-sentence
    if not (line[0].isupper() or line[0].isdigit()):
        return False
    letters = sum(ch.isalpha() for ch in line)
    return letters >= 3 and letters >= 0.5 * len(line.replace(" ", ""))
