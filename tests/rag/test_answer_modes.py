"""auto, extract and generate over the real attention paper: real parser, embedder, FAISS.

The LLM is a scripted generator here (the answer is the input under test), one that fails
when called (to prove quote mode never calls it), or the real embedded vLLM (marker vllm).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from benchmarks.variants import model_first
from core.settings import AnswerMode, Settings
from rag.answer import (
    EVIDENCE_INTRO,
    Answer,
    AnswerEngine,
    AnswerEvent,
    AnswerKind,
    AnswerRequest,
    DoneEvent,
)
from rag.answer_modes import STRATEGIES, Strategy
from rag.extract import Quote, QuoteExtractor
from rag.fakes import ScriptedGenerator
from rag.generation import Generator, GeneratorInfo, GeneratorStatus, Message
from rag.index import make_index
from rag.pipeline import Ingestor
from rag.prompts import NOT_FOUND_ANSWER
from rag.retrieval import Hit, Retriever
from rag.sessions import Session, SessionStore
from rag.verification import CitationVerifier, Support
from tests.plugins.vllm_server import VLLMServerHandle

GPU_QUESTION = "How many P100 GPUs were used to train the big model?"
UNRELATED_QUESTION = "What is the capital of Peru?"
MIN_SCORE = 0.25


class CallForbiddenGenerator:
    """A generator that fails the test if anything calls it."""

    async def status(self) -> GeneratorStatus:
        raise AssertionError("quote mode called the LLM (status)")

    async def info(self) -> GeneratorInfo:
        raise AssertionError("quote mode called the LLM (info)")

    async def count_tokens(self, messages: Sequence[Message]) -> int:
        raise AssertionError("quote mode called the LLM (count_tokens)")

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        temperature: float,
        stop: Sequence[str] = (),
    ) -> AsyncIterator[str]:
        raise AssertionError("quote mode called the LLM (stream)")

    async def aclose(self) -> None:
        pass


@pytest.fixture(scope="module")
def session(settings: Settings, embedder: Any, attention_pdf: bytes) -> Session:
    store = SessionStore(
        index_factory=lambda: make_index(embedder.dimension, "cpu"),
        ttl_s=600,
        max_sessions=2,
        max_chunks_per_session=10_000,
        max_total_chunks=10_000,
        max_bytes_per_session=200 * 1024**2,
        max_total_bytes=400 * 1024**2,
    )
    session = store.create()
    Ingestor(settings, embedder).ingest(session, attention_pdf, "attention.pdf")
    return session


def engine(embedder: Any, generator: Generator, *, min_confidence: float = 0.0) -> AnswerEngine:
    return AnswerEngine(
        Retriever(embedder, dedup_threshold=0.95, hybrid=True),
        generator,
        CitationVerifier(embedder),
        QuoteExtractor(embedder, min_confidence=min_confidence),
        min_score=MIN_SCORE,
    )


def confident_engine(settings: Settings, embedder: Any) -> AnswerEngine:
    """Quotes shown at the default minimum confidence; the LLM must not be called."""
    return engine(embedder, CallForbiddenGenerator(), min_confidence=settings.quote_min_confidence)


async def last_event(events: AsyncIterator[AnswerEvent]) -> Answer:
    async for event in events:
        if isinstance(event, DoneEvent):
            return event.answer
    raise AssertionError("no answer")


async def ask(
    engine: AnswerEngine,
    session: Session,
    question: str,
    mode: AnswerMode,
    strategy: Strategy | None = None,
) -> Answer:
    """``strategy``: another than the mode's own (the benchmarks' model-first ``auto``)."""
    hits, _ = await engine.retrieve(session, question, top_k=5, score_threshold=None)
    request = AnswerRequest(question, hits, max_tokens=96, temperature=0.0, mode=mode)
    return await last_event((strategy or STRATEGIES[mode])(engine, request))


def cited_pages(answer: Answer) -> set[int]:
    return {page for c in answer.citations for page in (c.hit.chunk.page, c.hit.chunk.page_end)}


def test_extract_answers_the_p100_question_without_calling_the_llm(
    embedder: Any, session: Session
) -> None:
    answer = asyncio.run(
        ask(engine(embedder, CallForbiddenGenerator()), session, GPU_QUESTION, AnswerMode.EXTRACT)
    )
    assert answer.kind is AnswerKind.QUOTED
    assert "8" in answer.text and cited_pages(answer) & {7, 8}
    # The highlight is the exact quoted sentence in its passage.
    (n, highlight), *_ = answer.highlights.items()
    assert answer.sources[n - 1].chunk.text[highlight.start : highlight.end] in answer.text


def test_extract_below_the_minimum_confidence_shows_the_quotes_as_unverified_evidence(
    embedder: Any, session: Session
) -> None:
    strict = engine(embedder, CallForbiddenGenerator(), min_confidence=0.99)
    answer = asyncio.run(ask(strict, session, GPU_QUESTION, AnswerMode.EXTRACT))
    assert (answer.kind, answer.grounded, len(answer.sources)) == (AnswerKind.EVIDENCE, False, 5)
    assert answer.text.startswith(EVIDENCE_INTRO)
    assert "8 NVIDIA P100 GPUs" in answer.text and cited_pages(answer) & {7, 8}


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        (GPU_QUESTION, AnswerKind.QUOTED),
        # The best sentence is a table caption: on topic, not an answer, so only evidence.
        ("What is the main limitation of the Transformer?", AnswerKind.EVIDENCE),
    ],
)
def test_the_default_minimum_confidence_quotes_only_a_likely_answer(
    settings: Settings, embedder: Any, session: Session, question: str, kind: AnswerKind
) -> None:
    default = confident_engine(settings, embedder)
    assert asyncio.run(ask(default, session, question, AnswerMode.EXTRACT)).kind is kind


class RecordingExtractor(QuoteExtractor):
    """The real extractor, noting the question it is asked to quote for."""

    def __init__(self, embedder: Any, *, min_confidence: float = 0.0) -> None:
        super().__init__(embedder, min_confidence=min_confidence)
        self.asked: list[str] = []

    def closest(self, question: str, sources: Sequence[Hit]) -> list[Quote]:
        self.asked.append(question)
        return super().closest(question, sources)


def test_a_follow_up_is_quoted_for_its_standalone_question(embedder: Any, session: Session) -> None:
    """ "its" names nothing without the conversation; the rewritten question does."""
    extractor = RecordingExtractor(embedder)
    quoting = AnswerEngine(
        Retriever(embedder, dedup_threshold=0.95, hybrid=True),
        CallForbiddenGenerator(),
        CitationVerifier(embedder),
        extractor,
        min_score=MIN_SCORE,
    )
    standalone = "How long did its training take? (P100 GPUs, train, big model)"
    hits, _ = asyncio.run(quoting.retrieve(session, standalone, top_k=5, score_threshold=None))
    request = AnswerRequest(
        "How long did its training take?",
        hits,
        max_tokens=96,
        temperature=0.0,
        mode=AnswerMode.EXTRACT,
        standalone=standalone,
    )
    asyncio.run(last_event(STRATEGIES[AnswerMode.EXTRACT](quoting, request)))
    assert extractor.asked == [standalone]


def test_auto_quotes_a_confident_answer_without_calling_the_llm(
    settings: Settings, embedder: Any, session: Session
) -> None:
    answer = asyncio.run(
        ask(confident_engine(settings, embedder), session, GPU_QUESTION, AnswerMode.AUTO)
    )
    assert answer.kind is AnswerKind.QUOTED
    assert "8" in answer.text and cited_pages(answer) & {7, 8}


def unsure_engine(embedder: Any, generator: Generator) -> AnswerEngine:
    """No quote is ever confident enough, so ``auto`` always asks the model."""
    return engine(embedder, generator, min_confidence=1.0)


def test_auto_shows_only_the_supported_sentence(embedder: Any, session: Session) -> None:
    scripted = ScriptedGenerator(
        "8 NVIDIA P100 GPUs were used to train the big models [1]. "
        "The big model was trained on 64 TPUs [1]. "
        "Question: How many P100 GPUs? "
        "The teacher's book [2]."
    )
    answer = asyncio.run(
        ask(unsure_engine(embedder, scripted), session, GPU_QUESTION, AnswerMode.AUTO)
    )
    assert answer.kind is AnswerKind.GENERATED
    assert answer.text == "8 NVIDIA P100 GPUs were used to train the big models [1]."
    assert answer.removed == 3
    assert [c.support is Support.SUPPORTED for c in answer.claims] == [True, False, False, False]


WRONG_ANSWER = "The big model was trained on 7 P100 GPUs [1]."


@pytest.mark.parametrize(
    ("strategy", "min_confidence", "kind", "shown"),
    [
        # No confident quote and nothing the model wrote holds: the closest sentences, as
        # unverified evidence (the answer among them).
        (None, 1.0, AnswerKind.EVIDENCE, "8 NVIDIA P100 GPUs"),
        # The earlier order (model first) quotes when nothing the model wrote holds.
        (model_first, 0.0, AnswerKind.QUOTED, "8 NVIDIA P100 GPUs"),
    ],
)
def test_auto_never_shows_an_unsupported_written_answer(
    embedder: Any,
    session: Session,
    strategy: Strategy | None,
    min_confidence: float,
    kind: AnswerKind,
    shown: str,
) -> None:
    asking = engine(embedder, ScriptedGenerator(WRONG_ANSWER), min_confidence=min_confidence)
    answer = asyncio.run(ask(asking, session, GPU_QUESTION, AnswerMode.AUTO, strategy))
    assert (answer.kind, shown in answer.text, answer.removed) == (kind, True, 1)
    assert answer.claims[-1].text == WRONG_ANSWER  # listed with its label, not shown


def test_generate_with_an_unbacked_draft_leads_with_the_answer_sentence_as_evidence(
    embedder: Any, session: Session
) -> None:
    asking = engine(embedder, ScriptedGenerator(WRONG_ANSWER))
    answer = asyncio.run(
        ask(asking, session, "How many GPUs were used to train the big model?", AnswerMode.GENERATE)
    )
    assert (answer.kind, answer.grounded) == (AnswerKind.EVIDENCE, False)
    first = answer.text.removeprefix(EVIDENCE_INTRO).split("]")[0]
    assert "8 NVIDIA P100 GPUs" in first and cited_pages(answer) & {7, 8}
    assert [c.text for c in answer.claims] == [WRONG_ANSWER]  # listed, not shown


def test_generate_keeps_the_whole_answer(embedder: Any, session: Session) -> None:
    text = (
        "The models were trained on one machine with 8 NVIDIA P100 GPUs [1]. It took 64 TPUs [1]."
    )
    answer = asyncio.run(
        ask(engine(embedder, ScriptedGenerator(text)), session, GPU_QUESTION, AnswerMode.GENERATE)
    )
    assert answer.kind is AnswerKind.GENERATED and answer.text == text


@pytest.mark.parametrize("mode", [AnswerMode.AUTO, AnswerMode.EXTRACT])
def test_unrelated_question_is_not_found_and_says_why(
    embedder: Any, session: Session, mode: AnswerMode
) -> None:
    answer = asyncio.run(
        ask(engine(embedder, CallForbiddenGenerator()), session, UNRELATED_QUESTION, mode)
    )
    assert answer.text == NOT_FOUND_ANSWER and answer.kind is AnswerKind.NOT_FOUND
    assert answer.not_found_reason is not None
    assert f"below the threshold of {MIN_SCORE:.2f}" in answer.not_found_reason


def test_related_question_is_never_not_found_in_auto(embedder: Any, session: Session) -> None:
    scripted = ScriptedGenerator(NOT_FOUND_ANSWER)
    answer = asyncio.run(ask(engine(embedder, scripted), session, GPU_QUESTION, AnswerMode.AUTO))
    assert answer.kind is AnswerKind.QUOTED and "8" in answer.text


@pytest.mark.vllm
def test_p100_question_in_auto_with_the_real_model(
    embedder: Any, session: Session, vllm_server: VLLMServerHandle
) -> None:
    # Model first, so the real model writes (the default would quote without it).
    generator = vllm_server.make_generator(timeout_s=300, retries=1)
    answer = asyncio.run(
        ask(engine(embedder, generator), session, GPU_QUESTION, AnswerMode.AUTO, model_first)
    )
    asyncio.run(generator.aclose())
    assert answer.kind in (AnswerKind.GENERATED, AnswerKind.QUOTED)
    assert "8" in answer.text and cited_pages(answer) & {7, 8}, answer.text


def test_an_evidence_reply_scores_the_passages_once(embedder: Any, session: Session) -> None:
    """No confident quote, an unbacked draft: the evidence reuses the quotes' scoring."""
    extractor = RecordingExtractor(embedder, min_confidence=1.0)
    asking = AnswerEngine(
        Retriever(embedder, dedup_threshold=0.95, hybrid=True),
        ScriptedGenerator(WRONG_ANSWER),
        CitationVerifier(embedder),
        extractor,
        min_score=MIN_SCORE,
    )
    answer = asyncio.run(ask(asking, session, GPU_QUESTION, AnswerMode.AUTO))
    assert (answer.kind, extractor.asked) == (AnswerKind.EVIDENCE, [GPU_QUESTION])
