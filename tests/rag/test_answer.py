"""The answer policy of rag/answer.py: an answer with no supported sentence is not shown;
the passages' closest sentences are, as unverified evidence.

The generator and the verifier are scripted: what is under test is the rule that turns
their output into the answer, not the model or the scoring (tests/rag/test_verification.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from core.settings import AnswerMode
from ingest.models import Chunk
from rag.answer import (
    EVIDENCE_INTRO,
    UNANSWERED_TEXT,
    AnswerEngine,
    AnswerKind,
    AnswerRequest,
    DoneEvent,
    TokenEvent,
)
from rag.answer_modes import answer
from rag.extract import QuoteExtractor
from rag.fakes import HashingEmbedder, ScriptedGenerator
from rag.prompts import NOT_FOUND_ANSWER
from rag.retrieval import Hit
from rag.verification import Claim, Highlight, Support

HITS = [
    Hit(Chunk("d", "paper.pdf", "We trained on 8 P100 GPUs.", 7, 7, 0, 26), 0.8),
    Hit(Chunk("d", "paper.pdf", "Training took 3.5 days.", 8, 8, 0, 23), 0.6),
]
SENTENCES = ["It used 8 P100 GPUs [1].", "It took 3.5 days [2]."]
ANSWER = " ".join(SENTENCES)


class ScriptedVerifier:
    """Labels the two sentences of ANSWER, in order, with the given support levels."""

    def __init__(self, *levels: Support) -> None:
        self.levels = levels

    def verify(self, answer: str, sources: Sequence[Hit], question: str = "") -> list[Claim]:
        assert answer == ANSWER and list(sources) == HITS
        return [
            Claim(
                text=sentence,
                citations=[n],
                support=level,
                score=0.9 if level is Support.SUPPORTED else 0.2,
                highlight=Highlight(n, 0, 10),
            )
            for n, (sentence, level) in enumerate(zip(SENTENCES, self.levels, strict=True), 1)
        ]


async def answer_with(
    verifier: Any,
    extractor: QuoteExtractor | None = None,
    *,
    mode: AnswerMode = AnswerMode.GENERATE,
    min_score: float | None = None,
) -> tuple[str, DoneEvent]:
    engine = AnswerEngine(
        retriever=None,  # type: ignore[arg-type]
        generator=ScriptedGenerator(ANSWER),
        verifier=verifier,
        extractor=extractor,
        min_score=min_score,
    )
    streamed, done = "", None
    request = AnswerRequest("How many GPUs?", HITS, max_tokens=64, temperature=0.0, mode=mode)
    async for event in answer(engine, request):
        if isinstance(event, TokenEvent):
            streamed += event.text
        else:
            done = event
    assert done is not None
    return streamed, done


@pytest.mark.parametrize("mode", [AnswerMode.GENERATE, AnswerMode.AUTO, AnswerMode.EXTRACT])
async def test_no_supported_sentence_leads_with_the_closest_sentence_as_unverified_evidence(
    mode: AnswerMode,
) -> None:
    # No quote is confident enough to be the answer (min_confidence 1.0), nothing the model
    # wrote is backed: the passages' closest sentence leads, cited with its page.
    extractor = QuoteExtractor(HashingEmbedder(), min_confidence=1.0)
    verifier = ScriptedVerifier(Support.WEAK, Support.UNSUPPORTED)
    _, done = await answer_with(verifier, extractor, mode=mode)
    answer = done.answer
    assert answer.text.startswith(
        f"{EVIDENCE_INTRO} We trained on 8 P100 GPUs. [1] (paper.pdf, page 7)"
    )
    assert (answer.kind, answer.grounded) == (AnswerKind.EVIDENCE, False)
    assert answer.citations[0].hit == HITS[0]
    assert answer.highlights[1] == Highlight(1, 0, 26)
    # The model's draft (none in extract mode) is kept as removed, not shown.
    drafted = [] if mode is AnswerMode.EXTRACT else [Support.WEAK, Support.UNSUPPORTED]
    assert [c.support for c in answer.claims] == drafted


async def test_no_relevant_passage_is_still_not_found() -> None:
    extractor = QuoteExtractor(HashingEmbedder(), min_confidence=1.0)
    _, done = await answer_with(None, extractor, mode=AnswerMode.AUTO, min_score=0.9)
    assert (done.answer.kind, done.answer.text) == (AnswerKind.NOT_FOUND, NOT_FOUND_ANSWER)
    assert done.answer.citations == []


async def test_without_an_extractor_no_supported_sentence_gives_the_unanswered_reply() -> None:
    streamed, done = await answer_with(ScriptedVerifier(Support.WEAK, Support.UNSUPPORTED))
    answer = done.answer
    assert streamed.strip() == ANSWER  # what streamed is replaced, not hidden from the stream
    # Passages were found, so not "I could not find this": that is for retrieval finding none.
    assert (answer.text, answer.kind) == (UNANSWERED_TEXT, AnswerKind.UNANSWERED)
    assert not answer.grounded
    assert (answer.citations, answer.invalid_citations) == ([], [])
    assert answer.sources == HITS  # the reader can still check the passages
    assert [c.support for c in answer.claims] == [Support.WEAK, Support.UNSUPPORTED]


async def test_one_supported_sentence_keeps_the_answer_and_its_citations() -> None:
    _, done = await answer_with(ScriptedVerifier(Support.SUPPORTED, Support.UNSUPPORTED))
    answer = done.answer
    assert answer.grounded
    assert answer.text == ANSWER
    assert [(c.n, c.hit) for c in answer.citations] == [(1, HITS[0]), (2, HITS[1])]
    assert answer.invalid_citations == []


async def test_without_a_verifier_the_answer_is_kept_as_written() -> None:
    _, done = await answer_with(None)
    assert done.answer.grounded
    assert done.answer.text == ANSWER
    assert done.answer.claims == []
