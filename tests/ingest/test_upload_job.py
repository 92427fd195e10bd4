"""ingest.loader.prepare_document: one job per document in the parser pool, returning its
pages and chunks; a long PDF is one job per page range and one to finish it."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from PIL import Image
from pypdf import PdfReader, PdfWriter

from core.errors import DocumentTooComplexError
from ingest.chunking import TokenChunker
from ingest.job import Chunking, ParseTimeLimit, ReadOptions
from ingest.loader import Loaded, ParserPool, prepare_document
from ingest.upload import Upload
from ingest.worker_pool import time_limit
from tests.ingest.office_documents import image_only_pdf, text_image
from tests.privacy.documents import text_pdf

T = TypeVar("T")

OPTIONS = ReadOptions(max_pages=1000, limit=ParseTimeLimit(base_s=300, per_page_s=1.0))
SENTENCE = "Harbour fees rose to ninety crowns"


class CountingPool(ParserPool):
    """The real pool, noting the job of every call that sends work to a worker."""

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self.jobs: list[str] = []

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        self.jobs.append(fn.__name__)
        return super().run(fn, *args, **kwargs)


@pytest.fixture(scope="module")
def pool() -> Iterator[CountingPool]:
    pool = CountingPool(workers=2)
    pool.warm_up()
    yield pool
    pool.close()


def prepare(
    pool: CountingPool, data: bytes, name: str, fake_embedder: Any, **options: Any
) -> Loaded:
    pool.jobs.clear()
    chunker = TokenChunker(fake_embedder.count_tokens, 192, 64)
    return prepare_document(
        Upload(name, data),
        OPTIONS,
        pool=pool,
        chunking=Chunking(chunker, "doc", max_chunks=10_000),
        **options,
    )


def report_pdf(pages: int) -> bytes:
    return text_pdf(
        [
            [f"Page {n} of the annual report: revenue grew in segment {n % 7}."] * 20
            for n in range(1, pages + 1)
        ]
    )


def mixed_pdf() -> bytes:
    """A text page, then a scanned page that OCR reads."""
    text_page = text_pdf([["The text layer page talks about lighthouse keepers."] * 3])
    image = Image.open(io.BytesIO(text_image([SENTENCE, "Payment is due within thirty days"])))
    writer = PdfWriter()
    for source in (text_page, image_only_pdf([image])):
        for page in PdfReader(io.BytesIO(source)).pages:
            writer.add_page(page)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_a_text_file_is_one_job_that_returns_its_pages_and_chunks(
    pool: CountingPool, fake_embedder: Any
) -> None:
    loaded = prepare(pool, b"Lighthouse keepers rotate every six weeks.", "a.txt", fake_embedder)
    prepared = loaded.prepared
    assert pool.jobs == ["read_upload"]
    assert (prepared.document.page_count, [c.text for c in prepared.chunks]) == (
        1,
        ["Lighthouse keepers rotate every six weeks."],
    )


def test_a_pdf_is_one_job(pool: CountingPool, attention_pdf: bytes, fake_embedder: Any) -> None:
    prepared = prepare(pool, attention_pdf, "attention.pdf", fake_embedder).prepared
    assert (pool.jobs, prepared.document.page_count) == (["read_upload"], 15)
    assert {c.document_id for c in prepared.chunks} == {"doc"}


def test_a_scan_is_one_job_that_ocrs_its_pages_and_reports_progress(
    pool: CountingPool, fake_embedder: Any
) -> None:
    progress: list[tuple[int, int]] = []
    prepared = prepare(
        pool, mixed_pdf(), "mixed.pdf", fake_embedder, progress=lambda *p: progress.append(p)
    ).prepared
    assert (pool.jobs, prepared.document.ocr_pages, progress) == (
        ["read_upload"],
        (2,),
        [(0, 1), (1, 1)],
    )
    assert any(c.ocr and "ninety crowns" in c.text.lower() for c in prepared.chunks)


def test_an_image_is_one_job(pool: CountingPool, fake_embedder: Any) -> None:
    prepared = prepare(pool, text_image([SENTENCE]), "note.png", fake_embedder).prepared
    assert (pool.jobs, prepared.document.ocr_pages) == (["read_upload"], (1,))


def test_a_long_pdf_is_one_job_per_page_range_and_one_to_finish(
    pool: CountingPool, fake_embedder: Any
) -> None:
    data = report_pdf(40)  # two ranges of 20 pages on the two workers
    parallel = prepare(pool, data, "report.pdf", fake_embedder).prepared
    assert pool.jobs == ["read_upload", "read_range", "finish_pdf"]
    single = CountingPool(workers=1)
    try:
        serial = prepare(single, data, "report.pdf", fake_embedder).prepared
    finally:
        single.close()
    assert single.jobs == ["read_upload"]
    assert (parallel.document, parallel.chunks) == (serial.document, serial.chunks)


def stage_then_sleep(limit_s: float, sleep_s: float) -> str:
    """A job whose one stage may take ``limit_s`` and takes ``sleep_s``."""
    time_limit(limit_s, "Splitting")
    time.sleep(sleep_s)
    return "done"


def test_a_stage_runs_under_the_limit_the_job_sets_for_it(pool: CountingPool) -> None:
    assert pool.run(stage_then_sleep, 30, 1.0, timeout_s=0.5, filename="a.txt") == "done"
    with pytest.raises(DocumentTooComplexError) as caught:
        pool.run(stage_then_sleep, 0.2, 30, timeout_s=60, filename="b.txt")
    assert caught.value.message.startswith("Splitting 'b.txt' took longer than the 0.2 s limit")
