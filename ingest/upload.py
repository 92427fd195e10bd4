"""An upload as received: its safe display name and its bytes, within the size limit.

The one place an upload's name is sanitised and its size checked: ``Receiving`` takes a
file's bytes piece by piece as they arrive (the API's multipart reader stops reading at
the limit) and ``Upload.received`` a file read whole (CLI, benchmarks). Everything after
(parsing, room in the session) takes the Upload as it is.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from core.errors import FileTooLargeError

MAX_FILENAME_CHARS = 120
FALLBACK_FILENAME = "document"


@dataclass(frozen=True, slots=True, repr=False)
class Upload:
    """A file to ingest: ``name`` is already sanitised, ``data`` within the size limit."""

    name: str
    data: bytes

    def __repr__(self) -> str:  # never the content
        return f"Upload({len(self.data)} bytes)"

    @classmethod
    def received(cls, filename: str, data: bytes, *, max_bytes: int) -> Upload:
        """A file read whole: its name sanitised, its size checked."""
        receiving = Receiving(filename, max_bytes=max_bytes)
        receiving.check(len(data), whole=True)
        return cls(receiving.name, data)


class Receiving:
    """A file arriving in pieces, refused as soon as it outgrows ``max_bytes``."""

    def __init__(self, filename: str, *, max_bytes: int) -> None:
        self.name = sanitize_filename(filename)
        self._max_bytes = max_bytes
        self._buffer = bytearray()

    def add(self, piece: bytes) -> None:
        self.check(len(self._buffer) + len(piece), whole=False)
        self._buffer += piece

    def upload(self) -> Upload:
        """The whole file, once every piece has arrived."""
        upload = Upload(self.name, bytes(self._buffer))
        self._buffer = bytearray()
        return upload

    def check(self, size: int, *, whole: bool) -> None:
        """FileTooLargeError when ``size`` bytes (the file's size when ``whole``, else what
        has arrived so far) are over the limit."""
        if size > self._max_bytes:
            raise FileTooLargeError(
                f"'{self.name}' is {'' if whole else 'over '}{_megabytes(size)} MB; the "
                f"upload limit is {_megabytes(self._max_bytes)} MB. Split it into smaller "
                "files, or raise PGPT_MAX_UPLOAD_MB.",
                filename=self.name,
            )


def sanitize_filename(filename: str) -> str:
    """A safe display name: no directories, no control or bidi characters, bounded length."""
    name = unicodedata.normalize("NFC", filename)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    # Cc: control characters; Cf: invisible formatting such as right-to-left overrides
    # that make 'evil\u202efdp.exe' display as 'evilexe.pdf'; Zl/Zp: line breaks.
    name = "".join(ch for ch in name if unicodedata.category(ch) not in {"Cc", "Cf", "Zl", "Zp"})
    name = " ".join(name.split()).strip(" .")
    if not name:
        return FALLBACK_FILENAME
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, extension = name.rpartition(".")
        if dot and 0 < len(extension) <= 10:
            keep = MAX_FILENAME_CHARS - len(extension) - 2
            name = f"{stem[:keep]}….{extension}"
        else:
            name = name[: MAX_FILENAME_CHARS - 1] + "…"
    return name


def _megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f}".removesuffix(".0")
