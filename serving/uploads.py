"""Multipart uploads read straight into memory under a hard cap.

Starlette's ``request.form()`` spools large parts to a temporary file on disk;
documents must never touch the disk, so we drive python-multipart ourselves. Each file
arrives through ingest.upload.Receiving: its name sanitised and its size checked there,
once, as its bytes arrive.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from core.errors import (
    FileTooLargeError,
    InvalidRequestError,
    PGPTError,
    UnsupportedMediaTypeError,
)
from ingest.upload import Receiving, Upload

MAX_FIELD_BYTES = 64 * 1024  # plain form fields (the password) are small


@dataclass
class UploadForm:
    files: list[Upload] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    buffer: bytearray = field(default_factory=bytearray)  # a plain field's value
    file: Receiving | None = None  # a file's bytes, once its headers are read


class _Collector:
    """python-multipart callbacks that assemble parts in memory, enforcing the caps."""

    def __init__(self, file_field: str, max_file_bytes: int, max_files: int) -> None:
        self.form = UploadForm()
        self._file_field = file_field
        self._max_file_bytes = max_file_bytes
        self._max_files = max_files
        self._part = _Part()
        self._header_field = bytearray()
        self._header_value = bytearray()

    def on_part_begin(self) -> None:
        self._part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._part.headers[bytes(self._header_field).lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        name, filename = self._disposition()
        if filename is not None:
            if self._part.file is None:
                self._part.file = Receiving(filename, max_bytes=self._max_file_bytes)
            self._part.file.add(data[start:end])
            return
        self._part.buffer += data[start:end]
        if len(self._part.buffer) > MAX_FIELD_BYTES:
            raise FileTooLargeError(
                f"The form field '{name}' is larger than {MAX_FIELD_BYTES // 1024} KB.",
                filename=name,
            )

    def on_part_end(self) -> None:
        name, filename = self._disposition()
        if filename is None:
            self.form.fields[name] = self._part.buffer.decode("utf-8", errors="replace")
        elif name == self._file_field:
            if len(self.form.files) >= self._max_files:
                raise InvalidRequestError(f"At most {self._max_files} files per upload.")
            file = self._part.file or Receiving(filename, max_bytes=self._max_file_bytes)
            self.form.files.append(file.upload())
        self._part = _Part()

    def _disposition(self) -> tuple[str, str | None]:
        _, params = parse_options_header(self._part.headers.get(b"content-disposition"))
        name = params.get(b"name", b"").decode("utf-8", errors="replace")
        raw_filename = params.get(b"filename")
        filename = None if raw_filename is None else raw_filename.decode("utf-8", "replace")
        return name, filename


async def read_upload_form(
    request: Request, *, file_field: str, max_file_bytes: int, max_files: int
) -> UploadForm:
    """Parse a multipart/form-data body chunk by chunk, never buffering more than the caps."""
    content_type, params = parse_options_header(request.headers.get("content-type"))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise UnsupportedMediaTypeError(
            "Upload documents as multipart/form-data with one part named 'files' per file."
        )
    collector = _Collector(file_field, max_file_bytes, max_files)
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": collector.on_part_begin,
            "on_header_field": collector.on_header_field,
            "on_header_value": collector.on_header_value,
            "on_header_end": collector.on_header_end,
            "on_part_data": collector.on_part_data,
            "on_part_end": collector.on_part_end,
        },
    )
    async for chunk in request.stream():
        try:
            parser.write(chunk)
        except PGPTError:
            raise
        except Exception as exc:  # python-multipart raises several types on bad framing
            raise InvalidRequestError(f"The upload is not valid multipart data ({exc}).") from None
    parser.finalize()
    return collector.form
