"""Hand-written PDFs built in memory: ordinary, padded, hostile. Nothing touches the disk."""

from __future__ import annotations

import random
import zlib
from collections.abc import Sequence

FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def pdf_string(text: str) -> bytes:
    """A PDF literal string for Tj: ASCII with (, ) and \\ escaped."""
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return b"(" + escaped.encode("ascii") + b")"


def text_stream(lines: Sequence[str]) -> bytes:
    """A page content stream that draws each line in Helvetica, top to bottom."""
    body = [b"BT /F1 11 Tf 14 TL 56 760 Td"]
    body += [pdf_string(line) + b" Tj T*" for line in lines]
    body.append(b"ET")
    return b"\n".join(body)


def stream_object(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def assemble(objects: Sequence[bytes], *, root: int = 1) -> bytes:
    """Number the objects from 1, write them with a correct xref table and trailer."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        root,
        xref_at,
    )
    return bytes(out)


FIRST_PAGE_OBJECT = 4  # pages_pdf: catalog, pages and font come first


def first_extra_object(page_count: int) -> int:
    """The object number of the first of ``pages_pdf``'s ``extra_objects``."""
    return FIRST_PAGE_OBJECT + 2 * page_count


def pages_pdf(
    contents: Sequence[bytes], *, extra_objects: Sequence[bytes] = (), resources: bytes = b""
) -> bytes:
    """A PDF with one page per content stream (object layout: catalog, pages, font, then
    page and content in turn, then ``extra_objects`` from ``first_extra_object``);
    ``resources`` join every page's."""
    first_page = FIRST_PAGE_OBJECT
    page_numbers = [first_page + 2 * i for i in range(len(contents))]
    kids = b" ".join(b"%d 0 R" % n for n in page_numbers)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(contents)),
        FONT,
    ]
    for page_number, content in zip(page_numbers, contents, strict=True):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> %s>> /Contents %d 0 R >>"
            % (resources, page_number + 1)
        )
        objects.append(stream_object(content))
    objects.extend(extra_objects)
    return assemble(objects)


def text_pdf(pages: Sequence[Sequence[str]], *, padding: bytes = b"") -> bytes:
    """A PDF whose pages carry the given lines; ``padding`` goes into an unused stream
    (it makes a file big without adding text)."""
    extra = [stream_object(padding)] if padding else []
    return pages_pdf([text_stream(lines) for lines in pages], extra_objects=extra)


def form_chain(first_object: int, depth: int = 20) -> list[bytes]:
    """Form XObjects numbered from ``first_object``, each drawing the next twice, ``depth``
    deep: a page that draws the first (``/X Do``) costs PDFium 2^depth drawings of a
    1,000-operator stream (about 15 s at depth 18 here, 4x per two levels)."""
    forms = []
    for level in range(depth):
        deepest = level == depth - 1
        body = b"q Q " * 1000 if deepest else b"/X Do /X Do"
        resources = (
            b""
            if deepest
            else b"/Resources << /XObject << /X %d 0 R >> >> " % (first_object + level + 1)
        )
        forms.append(
            stream_object(
                zlib.compress(body, 9),
                b"/Type /XObject /Subtype /Form /BBox [0 0 612 792] "
                + resources
                + b"/Filter /FlateDecode ",
            )
        )
    return forms


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


# --- hostile documents ---------------------------------------------------------------


def decompression_bomb_pdf(inflated_gb: int = 4) -> bytes:
    """One page whose FlateDecode content stream inflates to ``inflated_gb`` GiB of zeros
    (about 4 MB on the wire per GiB).

    Compressing gigabytes would take a while, so one 16 MiB block is deflated once and
    its compressed form repeated: after a full flush the compressor starts afresh, so
    every block compresses to the same bytes.
    """
    block_size = 16 * 1024 * 1024
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate, header added below
    piece = compressor.compress(bytes(block_size)) + compressor.flush(zlib.Z_FULL_FLUSH)
    blocks = inflated_gb * 1024 * 1024 * 1024 // block_size
    last_block = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    # Adler-32 of n zero bytes: A stays 1 and B counts the bytes.
    adler32 = ((blocks * block_size) % 65521) << 16 | 1
    deflated = b"\x78\xda" + piece * blocks + last_block + adler32.to_bytes(4, "big")
    return _single_page_with(stream_object(deflated, b"/Filter /FlateDecode "))


def _single_page_with(content_object: bytes) -> bytes:
    return assemble(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
            FONT,
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents 5 0 R >>",
            content_object,
        ]
    )


def nested_arrays_pdf(depth: int = 20_000) -> bytes:
    """A page whose /Annots is an array nested ``depth`` deep: [[[[ ... ]]]]."""
    nested = b"[" * depth + b"]" * depth
    return _nested_page(b"/Annots " + nested)


def nested_dicts_pdf(depth: int = 20_000) -> bytes:
    """A page with a dictionary nested ``depth`` deep: << /A << /A ... >> >>."""
    nested = b"<< /A " * depth + b"/B 1 " + b">> " * depth
    return _nested_page(b"/Deep " + nested)


def _nested_page(entry: bytes) -> bytes:
    return assemble(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
            FONT,
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents 5 0 R " + entry + b" >>",
            stream_object(text_stream(["Deeply nested objects hide behind this page."])),
        ]
    )


def empty_pages_pdf(pages: int = 10_000) -> bytes:
    """``pages`` blank pages sharing one empty content stream."""
    first_page = 4
    kids = b" ".join(b"%d 0 R" % (first_page + i) for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
        stream_object(b""),
    ]
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R >>"
    objects += [page] * pages
    return assemble(objects)


# --- mutations for fuzzing -------------------------------------------------------------


def mutations(data: bytes, count: int, seed: int) -> list[tuple[str, bytes]]:
    """``count`` seeded variants of ``data``: truncations, byte flips, cut-out middles."""
    rng = random.Random(seed)
    variants: list[tuple[str, bytes]] = []
    for i in range(count):
        kind = i % 4
        if kind == 0:  # truncated anywhere
            cut = rng.randrange(1, len(data))
            variants.append((f"truncated-{cut}", data[:cut]))
        elif kind == 1:  # a few random bytes flipped
            mutated = bytearray(data)
            for _ in range(rng.randint(1, 16)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            variants.append((f"flipped-{i}", bytes(mutated)))
        elif kind == 2:  # a middle part cut out, the trailer kept: the xref points nowhere
            start = rng.randrange(1, len(data) - 64)
            end = rng.randrange(start, len(data) - 32)
            variants.append((f"cut-{start}-{end}", data[:start] + data[end:]))
        else:  # flips concentrated in the structure at the end (xref, trailer)
            mutated = bytearray(data)
            tail = max(1, min(len(mutated), 4096))
            for _ in range(rng.randint(1, 8)):
                mutated[len(mutated) - 1 - rng.randrange(tail)] = rng.randrange(256)
            variants.append((f"tail-flipped-{i}", bytes(mutated)))
    return variants
