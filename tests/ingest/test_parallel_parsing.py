"""ingest.loader: a PDF's time limit grows with its pages; long PDFs parse in page ranges."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from benchmarks.data import path as data_path
from core.errors import DocumentTooComplexError
from core.settings import load_settings
from ingest.chunking import TokenChunker
from ingest.job import MIN_PAGES_PER_RANGE, ParseTimeLimit, page_ranges
from ingest.loader import ParserPool, load_document
from ingest.models import ParsedDocument
from rag.index import make_index
from rag.pipeline import Ingestor
from rag.sessions import SessionStore
from tests.privacy.documents import (
    first_extra_object,
    form_chain,
    pages_pdf,
    text_pdf,
    text_stream,
)

TEN_Q = "financebench-dev/pdfs/Pfizer_2023Q2_10Q.pdf"  # 72 pages


def stalling_pdf(report_page_count: int) -> bytes:
    """Report pages, then one page whose drawing keeps either text extractor busy for
    minutes (PDFium draws a chain of forms 2^20 times: `form_chain`)."""
    contents = [text_stream(lines) for lines in report_pages(report_page_count)] + [b"/X Do"]
    first_form = first_extra_object(len(contents))
    return pages_pdf(
        contents,
        extra_objects=form_chain(first_form),
        resources=b"/XObject << /X %d 0 R >> " % first_form,
    )


def report_pages(count: int, lines: int = 20) -> list[list[str]]:
    return [
        [f"Page {number} of the annual report: revenue grew in segment {number % 7}."] * lines
        for number in range(1, count + 1)
    ]


@pytest.fixture
def pool() -> Iterator[ParserPool]:
    pool = ParserPool(workers=2)
    pool.warm_up()
    yield pool
    pool.close()


def load(data: bytes, name: str, pool: ParserPool, **limits: float) -> ParsedDocument:
    return load_document(
        data,
        name,
        max_bytes=10**9,
        max_pages=2000,
        pool=pool,
        **limits,  # type: ignore[arg-type]
    )


# --- the time limit ------------------------------------------------------------------


def test_time_limit_is_a_base_plus_a_budget_per_page() -> None:
    assert ParseTimeLimit(base_s=30, per_page_s=0.5).for_pages(600) == 330


@pytest.mark.slow  # a 600-page PDF through the whole pipeline
def test_a_600_page_pdf_ingests_within_the_default_limits(fake_embedder: Any) -> None:
    settings = load_settings()
    data = text_pdf(report_pages(600, lines=2))  # short pages: the embedding stays quick
    session = SessionStore(
        index_factory=lambda: make_index(fake_embedder.dimension, "cpu"),
        ttl_s=600,
        max_sessions=1,
        max_chunks_per_session=settings.max_chunks_per_session,
        max_total_chunks=settings.max_total_chunks,
        max_bytes_per_session=200 * 1024**2,
        max_total_bytes=400 * 1024**2,
    ).create()
    info, _ = Ingestor(settings, fake_embedder).ingest(session, data, "annual-report.pdf")
    assert (info.pages, info.chunks > 0) == (600, True)


def test_a_page_that_stalls_past_its_budget_is_refused(pool: ParserPool) -> None:
    started = time.monotonic()
    with pytest.raises(DocumentTooComplexError) as caught:
        load(stalling_pdf(20), "stalls.pdf", pool, timeout_s=2, timeout_per_page_s=0.1)
    # Pages 12-21 went to one worker: its limit is 2 s + 10 x 0.1 s.
    assert "took longer than the 3 s limit" in caught.value.message
    assert time.monotonic() - started < 60
    assert load(text_pdf(report_pages(2)), "next.pdf", pool, timeout_s=60).page_count == 2


# --- page ranges -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pages", "parts", "ranges"),
    [
        (1, 4, [(1, 1)]),
        (MIN_PAGES_PER_RANGE * 2 - 1, 4, [(1, MIN_PAGES_PER_RANGE * 2 - 1)]),
        (16, 2, [(1, 8), (9, 16)]),
        (72, 5, [(1, 15), (16, 30), (31, 44), (45, 58), (59, 72)]),
        (600, 1, [(1, 600)]),
    ],
)
def test_page_ranges(pages: int, parts: int, ranges: list[tuple[int, int]]) -> None:
    assert page_ranges(pages, parts) == ranges


@pytest.mark.slow  # parses and chunks a big 10-Q three ways
def test_parallel_parsing_gives_the_same_pages_chunks_and_offsets(fake_embedder: Any) -> None:
    path = data_path(TEN_Q)
    data = path.read_bytes()
    documents = []
    for workers in (1, 3):
        pool = ParserPool(workers=workers)
        try:
            documents.append(load(data, path.name, pool, timeout_s=600))
        finally:
            pool.close()
    serial, parallel = documents
    assert serial.page_count == 72
    assert parallel.pages == serial.pages
    chunker = TokenChunker(fake_embedder.count_tokens, 192, 64)
    assert chunker.split(parallel, "doc") == chunker.split(serial, "doc")


def test_a_worker_killed_mid_document_fails_the_document_cleanly(pool: ParserPool) -> None:
    data = stalling_pdf(20)
    before = {pid: _cpu_seconds(pid) for pid in pool.worker_pids}
    outcome: list[BaseException] = []

    def parse() -> None:
        try:
            load(data, "killed.pdf", pool, timeout_s=600)
        except BaseException as exc:  # handed to the test thread
            outcome.append(exc)

    parsing = threading.Thread(target=parse)
    parsing.start()
    # The worker on pages 12-21 is the one stuck on the stalling page: it keeps using CPU.
    busy = _wait_for(lambda: [p for p, cpu in before.items() if _cpu_seconds(p) - cpu > 2.0])
    os.kill(busy[0], signal.SIGKILL)
    parsing.join(timeout=120)
    assert not parsing.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], DocumentTooComplexError)
    assert "stopped unexpectedly while reading 'killed.pdf'" in outcome[0].message
    assert load(text_pdf(report_pages(20)), "next.pdf", pool, timeout_s=60).page_count == 20


def _cpu_seconds(pid: int) -> float:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return float(times.user + times.system)


def _wait_for(found: Any, timeout_s: float = 120) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result: list[int] = found()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError("no parser worker got busy")


def test_pool_size_defaults_to_the_cores() -> None:
    pool = ParserPool()
    try:
        assert pool.size == len(os.sched_getaffinity(0))
    finally:
        pool.close()
