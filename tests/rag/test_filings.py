"""Retrieval on real SEC filings: a question naming company and period finds its table.

Two small filings of the financebench-dev set (a 10-K and a 10-Q, 147 pages) in one
session, with the default settings: context headers, auto text mode, query cleaning,
hybrid search and page diversity.
"""

from __future__ import annotations

from typing import Any

import pytest

from core.settings import Settings
from rag.index import make_index
from rag.pipeline import Ingestor
from rag.retrieval import make_retriever
from rag.sessions import Session, SessionStore

pytestmark = pytest.mark.slow  # ingests two filings (about a minute of embedding)

FILINGS = ("BESTBUY_2023_10K.pdf", "Pfizer_2023Q2_10Q.pdf")


@pytest.fixture(scope="module")
def filings_session(settings: Settings, embedder: Any) -> Session:
    from benchmarks import data

    store = SessionStore(
        index_factory=lambda: make_index(embedder.dimension, "cpu"),
        ttl_s=600,
        max_sessions=1,
        max_chunks_per_session=20_000,
        max_total_chunks=20_000,
        max_bytes_per_session=200 * 1024**2,
        max_total_bytes=400 * 1024**2,
    )
    session = store.create()
    # Parsing 75 pages of tables can outlast the 30 s default on the shared test machine.
    ingestor = Ingestor(settings.model_copy(update={"parse_timeout_s": 900.0}), embedder)
    for name in FILINGS:
        ingestor.ingest(session, data.path(f"financebench-dev/pdfs/{name}").read_bytes(), name)
    return session


def top_pages(
    settings: Settings, embedder: Any, session: Session, question: str
) -> list[tuple[str, int]]:
    hits = make_retriever(settings, embedder).search(session, question, top_k=5)
    return [(h.chunk.filename, p) for h in hits for p in range(h.chunk.page, h.chunk.page_end + 1)]


@pytest.mark.parametrize(
    ("question", "page"),
    [
        pytest.param(
            "Among operations, investing, and financing activities, which brought in the most "
            "(or lost the least) cash flow for Best Buy in FY2023?",
            ("BESTBUY_2023_10K.pdf", 42),
            id="cash-flow-statement",
        ),
        pytest.param(
            "For Pfizer, which geographic region had the biggest drop in Q22023 year over year "
            "revenues (on a percentage basis)?",
            ("Pfizer_2023Q2_10Q.pdf", 38),
            id="revenue-by-region-table",
        ),
        # The statement prints "Gross profit", never "gross margin": found by its lines.
        pytest.param(
            "Are Best Buy's gross margins historically consistent (not fluctuating more than "
            "roughly 2% each year)?",
            ("BESTBUY_2023_10K.pdf", 40),
            id="statement-of-earnings-for-gross-margin",
        ),
    ],
)
def test_a_question_finds_its_table_page_in_the_top_five(
    settings: Settings,
    embedder: Any,
    filings_session: Session,
    question: str,
    page: tuple[str, int],
) -> None:
    assert page in top_pages(settings, embedder, filings_session, question)


def test_five_results_are_five_different_pages(
    settings: Settings, embedder: Any, filings_session: Session
) -> None:
    hits = make_retriever(settings, embedder).search(
        filings_session, "Best Buy revenue FY2023", top_k=5
    )
    pages = [(h.chunk.filename, p) for h in hits for p in range(h.chunk.page, h.chunk.page_end + 1)]
    assert len(hits) == 5 and len(pages) == len(set(pages))
