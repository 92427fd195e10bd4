"""Retrieved passages + question -> a streamed, grounded answer with citations."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from rag.citations import Citation, parse_citations
from rag.conversation import Turn
from rag.generation import Generator
from rag.prompts import NOT_FOUND_ANSWER, build_messages, fit_history, fit_passages
from rag.retrieval import Hit, Retriever
from rag.sessions import Session
from rag.verification import (
    CitationVerifier,
    Claim,
    Highlight,
    Support,
    with_attributed_markers,
)


@dataclass(frozen=True, slots=True)
class Timings:
    retrieval_ms: float
    ttft_ms: float | None
    total_ms: float


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    citations: list[Citation]
    sources: list[Hit]  # every passage the model was given, numbered from 1
    invalid_citations: list[int]
    timings: Timings
    model: str
    claims: list[Claim]  # the model's sentences, each labelled by how well its sources back it
    highlights: dict[int, Highlight]  # passage number -> the span that best supports a claim
    grounded: bool  # False: no sentence was supported, so `text` is the not-found answer


@dataclass(frozen=True, slots=True)
class TokenEvent:
    text: str


@dataclass(frozen=True, slots=True)
class DoneEvent:
    answer: Answer


AnswerEvent = TokenEvent | DoneEvent


class AnswerEngine:
    def __init__(
        self,
        retriever: Retriever,
        generator: Generator,
        verifier: CitationVerifier | None = None,
    ) -> None:
        self.retriever = retriever
        self.generator = generator
        self.verifier = verifier

    async def retrieve(
        self, session: Session, question: str, *, top_k: int, score_threshold: float | None
    ) -> tuple[list[Hit], float]:
        """Best passages and the time it took, in ms. Runs off the event loop."""
        started = time.perf_counter()
        hits = await asyncio.to_thread(
            self.retriever.search,
            session,
            question,
            top_k=top_k,
            score_threshold=score_threshold,
        )
        return hits, (time.perf_counter() - started) * 1000

    async def stream(
        self,
        question: str,
        hits: Sequence[Hit],
        *,
        max_tokens: int,
        temperature: float,
        retrieval_ms: float = 0.0,
        history: Sequence[Turn] = (),
    ) -> AsyncIterator[AnswerEvent]:
        """Yield answer tokens, then one DoneEvent with citations, sources and timings.

        ``history``: earlier turns for the prompt, as many of the latest as fit.

        Raises GeneratorUnavailableError before the first token when the LLM is down.
        """
        started = time.perf_counter()
        info = await self.generator.info()
        budget = info.context_length - max_tokens
        sources = await fit_passages(
            question, hits, count_tokens=self.generator.count_tokens, budget_tokens=budget
        )
        if history:
            history = await fit_history(
                question,
                sources,
                history,
                count_tokens=self.generator.count_tokens,
                budget_tokens=budget,
            )
        messages = build_messages(question, sources, history)
        pieces: list[str] = []
        ttft_ms: float | None = None
        async for piece in self.generator.stream(
            messages, max_tokens=max_tokens, temperature=temperature
        ):
            if ttft_ms is None:
                ttft_ms = (time.perf_counter() - started) * 1000
            pieces.append(piece)
            yield TokenEvent(piece)
        text = "".join(pieces).strip()
        claims = (
            await asyncio.to_thread(self.verifier.verify, text, sources) if self.verifier else []
        )
        text = with_attributed_markers(text, claims)
        citations, invalid = parse_citations(text, sources)
        grounded = not claims or any(c.support is Support.SUPPORTED for c in claims)
        if not grounded:
            # Nothing the model said is backed by the passages: say so, keep the passages.
            text, citations, invalid = NOT_FOUND_ANSWER, [], []
        timings = Timings(
            retrieval_ms=retrieval_ms,
            ttft_ms=ttft_ms,
            total_ms=retrieval_ms + (time.perf_counter() - started) * 1000,
        )
        yield DoneEvent(
            Answer(
                text=text,
                citations=citations,
                sources=sources,
                invalid_citations=invalid,
                timings=timings,
                model=info.model,
                claims=claims,
                highlights=best_highlights(claims),
                grounded=grounded,
            )
        )


def best_highlights(claims: Sequence[Claim]) -> dict[int, Highlight]:
    """For each cited passage, the span that supports its best-backed claim."""
    best: dict[int, tuple[float, Highlight]] = {}
    for claim in claims:
        h = claim.highlight
        if h is not None and h.n in claim.citations and claim.score > best.get(h.n, (-1.0,))[0]:
            best[h.n] = (claim.score, h)
    return {n: h for n, (_, h) in best.items()}
