"""Every format an upload may be: the one table the loader dispatches from, and from which
the UI's accepted types, the error listing them and README's list of formats are made.

A 'document' format is parsed by one call, ``parse(data, filename, *, max_pages)``, in a
parser worker; PDFs and images have paths of their own in ingest/job.py (page counts,
page ranges, OCR). The file's content wins over its name: a PDF or an image is
recognised by its bytes whatever it is called.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ingest.models import ParsedDocument
from ingest.ocr import image_kind
from ingest.pdf import looks_like_pdf
from ingest.sheets import parse_csv, parse_xlsx
from ingest.slides import parse_pptx
from ingest.text import parse_markdown, parse_plain_text
from ingest.webpage import parse_html
from ingest.word import parse_docx

Parser = Callable[..., ParsedDocument]
# 'pdf' and 'image' go through the job's own paths; 'document' is one parse call.
FormatKind = Literal["pdf", "image", "document"]


@dataclass(frozen=True, slots=True)
class Format:
    name: str  # "Word", as the list of accepted types names it
    extensions: tuple[str, ...]  # lower case, with the dot; the first is the usual one
    kind: FormatKind
    # A 'document' is read by parse(data, filename, *, max_pages); PDFs and images by the
    # job's own paths (ingest/job.py).
    parse: Parser | None = None
    note: str = ""  # said after the extensions: "scanned too"


FORMATS: tuple[Format, ...] = (
    Format("PDF", (".pdf",), "pdf", note="scanned too"),
    Format("images", (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp"), "image"),
    Format("Word", (".docx",), "document", parse_docx),
    Format("PowerPoint", (".pptx",), "document", parse_pptx),
    Format("Excel", (".xlsx",), "document", parse_xlsx),
    Format("CSV", (".csv",), "document", parse_csv),
    Format("HTML", (".html", ".htm"), "document", parse_html),
    Format("plain text", (".txt", ".text"), "document", parse_plain_text),
    Format("Markdown", (".md", ".markdown"), "document", parse_markdown),
)


def format_for(extension: str) -> Format | None:
    """The format a file name's extension (lower case, with its dot) stands for."""
    return next((f for f in FORMATS if extension in f.extensions), None)


def format_of(data: bytes, extension: str) -> Format | None:
    """The format of an upload: by its content for PDFs and images, else by its name."""
    if looks_like_pdf(data):
        return format_for(".pdf")
    if image_kind(data) is not None:
        return format_for(".png")
    return format_for(extension)


def accepted_extensions() -> tuple[str, ...]:
    """Every extension an upload may have, with its dot ('.pdf', '.png', ...), in table order."""
    return tuple(extension for f in FORMATS for extension in f.extensions)


def accepted_types() -> str:
    """The accepted types as a sentence: 'PDF (.pdf, scanned too), images (...), ... or
    Markdown (.md, .markdown)'."""
    named = [
        f"{f.name} ({', '.join((*f.extensions, f.note) if f.note else f.extensions)})"
        for f in FORMATS
    ]
    return f"{', '.join(named[:-1])} or {named[-1]}"


def readme_format_list() -> str:
    """README's list of formats, one line per format (tests/ingest/test_formats.py keeps
    README in step with it)."""
    lines = []
    for f in FORMATS:
        extensions = ", ".join(f"`{extension}`" for extension in f.extensions)
        note = f" ({f.note})" if f.note else ""
        lines.append(f"- {f.name}{note}: {extensions}")
    return "\n".join(lines)
