"""Plain text and Markdown bytes -> pages (split at form feeds) and Markdown headings."""

from __future__ import annotations

import codecs
import re

from core.errors import DocumentTooComplexError, EmptyDocumentError, UnsupportedFileTypeError
from ingest.models import Heading, Page, ParsedDocument

PLAIN = "text/plain"
MARKDOWN = "text/markdown"
FORM_FEED = "\f"

# Longest BOMs first: the UTF-32-LE BOM starts with the UTF-16-LE one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# Text never contains these; binary files (images, archives, executables) are full of them.
_BINARY_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f]")
MAX_BINARY_CONTROL_RATIO = 0.01
LEGACY_CHAOS_MARGIN = 0.1
LEGACY_COHERENCE_MARGIN = 0.05

_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def parse_text(data: bytes, filename: str, *, markdown: bool, max_pages: int) -> ParsedDocument:
    """Decode, split at form feeds into pages, and (for Markdown) record ATX headings."""
    text = decode_text(data, filename)
    parts = text.split(FORM_FEED)
    if len(parts) > 1 and not parts[-1].strip():
        parts.pop()  # a trailing form feed ends the last page; it does not start a new one
    if not any(part.strip() for part in parts):
        raise EmptyDocumentError(
            f"'{filename}' contains no text. Check the file and upload it again.",
            filename=filename,
        )
    if len(parts) > max_pages:
        raise DocumentTooComplexError(
            f"'{filename}' has {len(parts)} pages (form feeds); the limit is {max_pages}. "
            "Split it into smaller files, or raise PGPT_MAX_PAGES.",
            filename=filename,
        )
    pages = tuple(Page(number=number, text=part) for number, part in enumerate(parts, start=1))
    headings = find_markdown_headings(pages) if markdown else ()
    return ParsedDocument(
        filename=filename,
        media_type=MARKDOWN if markdown else PLAIN,
        pages=pages,
        headings=headings,
    )


def parse_plain_text(data: bytes, filename: str, *, max_pages: int) -> ParsedDocument:
    return parse_text(data, filename, markdown=False, max_pages=max_pages)


def parse_markdown(data: bytes, filename: str, *, max_pages: int) -> ParsedDocument:
    return parse_text(data, filename, markdown=True, max_pages=max_pages)


def decode_text(data: bytes, filename: str) -> str:
    """BOM first, then strict UTF-8, then charset-normalizer's best guess; newlines -> '\\n'."""
    text = _decode(data, filename)
    if _looks_binary(text):
        raise _not_text(filename)
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def _decode(data: bytes, filename: str) -> str:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding)
            except UnicodeDecodeError:
                raise _not_text(filename) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    return _guess_legacy_encoding(data, filename)


def _guess_legacy_encoding(data: bytes, filename: str) -> str:
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        raise _not_text(filename)
    # On short texts charset-normalizer often ranks an exotic code page first (French
    # Latin-1 read as Baltic cp1257); Windows-1252 is by far the commonest legacy encoding,
    # so it wins whenever it reads the bytes about as well as the top guess.
    for match in matches:
        if (
            "cp1252" in match.could_be_from_charset
            and match.chaos <= best.chaos + LEGACY_CHAOS_MARGIN
            and match.coherence >= best.coherence - LEGACY_COHERENCE_MARGIN
        ):
            return str(match)
    return str(best)


def _looks_binary(text: str) -> bool:
    sample = text[:65536]
    if not sample:
        return False
    return len(_BINARY_CONTROL.findall(sample)) > MAX_BINARY_CONTROL_RATIO * len(sample)


def _not_text(filename: str) -> UnsupportedFileTypeError:
    return UnsupportedFileTypeError(
        f"'{filename}' is not readable text: it looks like binary data or uses an unknown "
        "character encoding. Save it as UTF-8 text (or export it as PDF) and upload it again.",
        filename=filename,
    )


def find_markdown_headings(pages: tuple[Page, ...]) -> tuple[Heading, ...]:
    """ATX headings ('# Title') outside fenced code blocks, with their page and offset."""
    headings: list[Heading] = []
    fence: str | None = None  # the opening fence while inside a code block
    for page in pages:
        offset = 0
        for line in page.text.split("\n"):
            stripped = line.rstrip()
            fence_match = _FENCE.match(stripped)
            if fence is None and fence_match:
                fence = fence_match.group(1)
            elif fence is not None:
                # A closing fence: same character, at least as long, nothing after it.
                if fence_match and fence_match.group(1)[0] == fence[0]:
                    closing = fence_match.group(1)
                    if len(closing) >= len(fence) and not stripped.lstrip()[len(closing) :]:
                        fence = None
            else:
                heading = _ATX_HEADING.match(stripped)
                title = (heading.group(2) or "").strip() if heading else ""
                if heading and title:
                    headings.append(
                        Heading(
                            page=page.number,
                            offset=offset,
                            level=len(heading.group(1)),
                            title=title,
                        )
                    )
            offset += len(line) + 1
    return tuple(headings)
