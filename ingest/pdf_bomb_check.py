"""The decompression-bomb check run before PDFium reads a PDF's text.

PDFium has no limit of its own on what a stream inflates to; pypdf has one. Every stream
PDFium will read for text is checked against pypdf's limit first, and a bomb is refused
with pypdf's LimitReachedError.
"""

from __future__ import annotations

import re
import zlib

from pypdf import PdfReader, get_configuration
from pypdf.errors import LimitReachedError, PyPdfError
from pypdf.generic import IndirectObject, StreamObject

# Decompression bomb check from the file's bytes (_check_flate_streams).
_STREAM_START = re.compile(rb">>\s*stream(?:\r\n|\n|\r)")
_FIRST_FILTER = re.compile(rb"/Filter\s*(?:\[\s*)?/([A-Za-z0-9]+)")
# Flate is inflated and checked; image codecs are not read for text (as in pypdf's walk).
_BOUNDED_FILTERS = frozenset(
    {b"FlateDecode", b"DCTDecode", b"JPXDecode", b"CCITTFaxDecode", b"JBIG2Decode"}
)
STREAM_DICT_SEARCH_BYTES = 1 << 16  # a form listing hundreds of forms has a long dictionary
INFLATE_BLOCK_BYTES = 1 << 16
# What pypdf raises on a damaged page (as opposed to a damaged file).
PAGE_ERRORS = (PyPdfError, ValueError, KeyError, TypeError, AttributeError)


def check_inflated_sizes(data: bytes, reader: PdfReader, first: int, last: int) -> None:
    """Refuse a decompression bomb before PDFium inflates it (PDFium has no limit of its
    own: a page whose content inflates to 4 GiB aborts the process), at pypdf's limits.

    An unencrypted file is checked from its bytes (_check_flate_streams); what that cannot
    judge is checked by inflating, with pypdf, what PDFium will read for text on pages
    ``first``..``last``: their content streams and the form XObjects they draw.
    """
    if not reader.is_encrypted and _check_flate_streams(data):
        return
    seen: set[int] = set()  # forms shared by several pages are inflated once
    for number in range(first, last + 1):
        try:
            page = reader.pages[number - 1]
            contents = page.get_contents()
            if contents is not None:
                contents.get_data()
            _inflate_forms(page.get("/Resources"), seen)
        except LimitReachedError:
            raise
        except PAGE_ERRORS:
            continue  # pypdf cannot read this page; PDFium may, and its text is still checked


def _check_flate_streams(data: bytes) -> bool:
    """Inflate every FlateDecode stream of the file's bytes under pypdf's zlib limit.

    A stream cannot sit inside an object stream, so each one is in the bytes as
    ``<< ... >> stream``. Inflating them with zlib costs milliseconds where pypdf's walk
    of the page resources parses every form dictionary in Python (0.3-1.9 s, with the
    load, for the 2,600 forms of the attention paper's figures). False when a stream's
    filter cannot be read from the bytes (another filter first, an indirect /Filter, a
    huge dictionary): then the walk decides. Raises LimitReachedError on a bomb.
    """
    limit = get_configuration().zlib_maximum_output_length
    for stream in _STREAM_START.finditer(data):
        header = data.rfind(
            b" obj", max(0, stream.start() - STREAM_DICT_SEARCH_BYTES), stream.start()
        )
        if header < 0:
            return False
        dictionary = data[header : stream.start()]
        if b"/Filter" not in dictionary:
            continue  # stored as is: nothing to inflate
        first_filter = _FIRST_FILTER.search(dictionary)
        if first_filter is None or first_filter.group(1) not in _BOUNDED_FILTERS:
            return False
        if (
            first_filter.group(1) == b"FlateDecode"
            and _inflated_size(data, stream.end(), limit) > limit
        ):
            raise LimitReachedError(f"a FlateDecode stream inflates to more than {limit} bytes")
    return True


def _inflated_size(data: bytes, start: int, limit: int) -> int:
    """Bytes the zlib stream at ``start`` inflates to, counting stops past ``limit``; a
    damaged stream counts what inflated before the damage."""
    inflater = zlib.decompressobj()
    size = 0
    position = start
    try:
        while not inflater.eof and position < len(data) and size <= limit:
            size += len(
                inflater.decompress(
                    data[position : position + INFLATE_BLOCK_BYTES], limit + 1 - size
                )
            )
            position += INFLATE_BLOCK_BYTES
            while inflater.unconsumed_tail and size <= limit:
                size += len(inflater.decompress(inflater.unconsumed_tail, limit + 1 - size))
    except zlib.error:
        pass  # PDFium reads what it can of a damaged stream; that is no more than this
    return size


def _inflate_forms(resources: object, seen: set[int]) -> None:
    if isinstance(resources, IndirectObject):
        resources = resources.get_object()
    if not isinstance(resources, dict):
        return
    xobjects = resources.get("/XObject")
    xobjects = xobjects.get_object() if isinstance(xobjects, IndirectObject) else xobjects
    if not isinstance(xobjects, dict):
        return
    for reference in xobjects.values():
        form = reference.get_object() if isinstance(reference, IndirectObject) else reference
        if not isinstance(form, StreamObject) or form.get("/Subtype") != "/Form":
            continue  # images are not read for text
        if id(form) in seen:
            continue
        seen.add(id(form))
        form.get_data()
        _inflate_forms(form.get("/Resources"), seen)
