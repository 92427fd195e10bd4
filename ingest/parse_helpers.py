"""What the parsers of ingest/ share: opening Office ZIPs safely, errors that name the
file and the format, a page built block by block, labelled table rows."""

from __future__ import annotations

import io
import zipfile

from core.errors import (
    CorruptDocumentError,
    DocumentTooComplexError,
    EmptyDocumentError,
    ProtectedDocumentError,
)
from ingest.models import Heading, Page

# An encrypted Word, PowerPoint or Excel file is an OLE compound file, not a ZIP.
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
# A ZIP whose parts unpack to more than this is refused before any XML is parsed.
MAX_UNPACKED_BYTES = 512 * 1024 * 1024

BLOCK_SEPARATOR = "\n\n"


def open_office_zip(data: bytes, filename: str, label: str) -> zipfile.ZipFile:
    """The ZIP inside a .docx/.pptx/.xlsx, after refusing encrypted, damaged and
    zip-bomb files."""
    if data.startswith(OLE_MAGIC):
        raise protected_error(filename, label)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        unpacked = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise corrupt_error(filename, label, exc) from None
    if unpacked > MAX_UNPACKED_BYTES:
        raise DocumentTooComplexError(
            f"'{filename}' unpacks to {unpacked // 1024 // 1024} MB; the limit is "
            f"{MAX_UNPACKED_BYTES // 1024 // 1024} MB. Split it into smaller files.",
            filename=filename,
        )
    return archive


def corrupt_error(filename: str, label: str, exc: BaseException | None) -> CorruptDocumentError:
    # Only the exception's type: library messages can quote the file's content.
    reason = f" ({type(exc).__name__})" if exc is not None else ""
    return CorruptDocumentError(
        f"'{filename}' is a damaged {label} that cannot be read{reason}. Open it in the "
        "program that made it, save a fresh copy, and upload that.",
        filename=filename,
    )


def protected_error(filename: str, label: str) -> ProtectedDocumentError:
    return ProtectedDocumentError(
        f"'{filename}' is a password-protected {label} (or an old binary Office file), which "
        "cannot be opened here. Remove the password (or save it in the current format), "
        "and upload the new copy.",
        filename=filename,
    )


class PageBuilder:
    """Builds one page's text block by block, recording headings at their offsets."""

    def __init__(self, number: int) -> None:
        self.number = number
        self._blocks: list[str] = []
        self._length = 0
        self.headings: list[Heading] = []

    def heading(self, title: str, level: int) -> None:
        title = " ".join(title.split())
        if title:
            self.headings.append(Heading(self.number, self._next_offset(), level, title))
            self.add(title)

    def add(self, block: str) -> None:
        block = block.strip()
        if block:
            self._length = self._next_offset() + len(block)
            self._blocks.append(block)

    def page(self) -> Page:
        return Page(self.number, BLOCK_SEPARATOR.join(self._blocks))

    def _next_offset(self) -> int:
        return self._length + len(BLOCK_SEPARATOR) if self._blocks else 0


def labelled_row(header: list[str], values: list[str]) -> str:
    """A table row as 'Header: value; ...' so each passage says what its numbers are."""
    cells = []
    for index, value in enumerate(values):
        if not value:
            continue
        name = header[index] if index < len(header) and header[index] else f"column {index + 1}"
        cells.append(f"{name}: {value}")
    return "; ".join(cells)


def check_page_count(count: int, max_pages: int, filename: str, unit: str) -> None:
    if count > max_pages:
        raise DocumentTooComplexError(
            f"'{filename}' has {count} {unit}s; the limit is {max_pages}. "
            "Split it into smaller files, or raise PGPT_MAX_PAGES.",
            filename=filename,
        )


def require_text(pages: tuple[Page, ...], filename: str, label: str) -> None:
    if not any(page.text.strip() for page in pages):
        raise EmptyDocumentError(
            f"'{filename}' is {_a(label)} {label} without any text. Check the file and upload "
            "it again.",
            filename=filename,
        )


def _a(label: str) -> str:
    return "an" if label[0] in "AEIOU" or label.startswith("HTML") else "a"
