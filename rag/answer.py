"""Retrieved passages + question -> a streamed, grounded answer with citations."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from core.api_models import AnswerKind as AnswerKind
from core.settings import AnswerMode
from rag.citations import Citation, parse_citations
from rag.conversation import Turn
from rag.extract import Quote, QuoteExtractor, quoted_answer
from rag.generation import Generator
from rag.hygiene import STOP_SEQUENCES, answer_token_cap, repetition_start
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


# Shown instead of an answer when passages were found but nothing the model wrote holds up
# against them and no sentence of theirs can be quoted.
UNANSWERED_TEXT = (
    "No sentence in the passages found answers this directly, so no answer is shown. "
    "The closest passages are below."
)


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    citations: list[Citation]
    sources: list[Hit]  # every passage the model was given, numbered from 1
    invalid_citations: list[int]
    timings: Timings
    model: str
    claims: list[Claim]  # the model's sentences or the quotes, each labelled by its backing
    highlights: dict[int, Highlight]  # passage number -> the span that best supports a claim
    grounded: bool  # False: nothing was supported; `text` is the not-found or unanswered reply
    mode: AnswerMode = AnswerMode.GENERATE  # the mode asked for
    kind: AnswerKind = AnswerKind.GENERATED  # what `text` is
    removed: int = 0  # the model's sentences left out of `text` as not supported (auto)
    not_found_reason: str | None = None  # why retrieval found nothing relevant


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
        extractor: QuoteExtractor | None = None,
        *,
        min_score: float | None = None,
        quotes_first: bool = True,
    ) -> None:
        """``quotes_first``: ``auto`` shows quotes when quote mode is confident of some and
        asks the model only otherwise; False asks the model first and quotes only when none
        of its sentences is supported (the earlier policy, kept for answer_bench)."""
        self.retriever = retriever
        self.generator = generator
        self.verifier = verifier
        self.extractor = extractor
        self.min_score = min_score
        self.quotes_first = quotes_first

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

    def not_found_reason(self, hits: Sequence[Hit]) -> str | None:
        """Why the hits cannot answer anything, or None when some passage is relevant."""
        if not hits:
            return "No passage was retrieved: the documents hold no text to search."
        best = max(hit.score for hit in hits)
        if self.min_score is not None and best < self.min_score:
            return (
                f"The best passage has a similarity of {best:.2f} to the question, below the "
                f"threshold of {self.min_score:.2f} (PGPT_ANSWER_MIN_SCORE)."
            )
        return None

    async def stream(
        self,
        question: str,
        hits: Sequence[Hit],
        *,
        max_tokens: int,
        temperature: float,
        retrieval_ms: float = 0.0,
        history: Sequence[Turn] = (),
        mode: AnswerMode = AnswerMode.GENERATE,
        standalone: str | None = None,
    ) -> AsyncIterator[AnswerEvent]:
        """Yield answer tokens, then one DoneEvent with citations, sources and timings.

        ``history``: earlier turns for the prompt, as many of the latest as fit.
        ``standalone``: a follow-up rewritten with its context ("its training" -> the big
        model's); claims and quotes are judged against it, since they cannot see history.
        ``extract`` never calls the LLM, nor does ``auto`` when a quote is confident;
        otherwise ``auto`` and ``generate`` raise GeneratorUnavailableError before the first
        token when the LLM is down.
        """
        started = time.perf_counter()
        judged = standalone or question
        reason = self.not_found_reason(hits) if mode is not AnswerMode.GENERATE else None
        if reason is not None:
            timings = _timings(retrieval_ms, None, started)
            not_found = _nothing_backed(AnswerKind.NOT_FOUND, hits, mode, timings, reason=reason)
            yield DoneEvent(not_found)
            return
        if mode is AnswerMode.EXTRACT:
            yield DoneEvent(await self._quoted(judged, hits, mode, retrieval_ms, started))
            return
        quotes: list[Quote] | None = None
        if mode is AnswerMode.AUTO and self.quotes_first and self.extractor is not None:
            # A confident quote is right more often than the small model's backed sentences
            # (docs/benchmarks/answers-auto.md), and needs no generation.
            quotes = await asyncio.to_thread(self.extractor.quotes, judged, hits)
            if quotes:
                yield DoneEvent(
                    await self._quoted(judged, hits, mode, retrieval_ms, started, quotes=quotes)
                )
                return
        info = await self.generator.info()
        hygiene = mode is AnswerMode.AUTO
        if hygiene:
            max_tokens = answer_token_cap(question, max_tokens)
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
        tokens = self.generator.stream(
            messages,
            max_tokens=max_tokens,
            temperature=temperature,
            stop=STOP_SEQUENCES if hygiene else (),
        )
        async for piece in tokens:
            if ttft_ms is None:
                ttft_ms = (time.perf_counter() - started) * 1000
            pieces.append(piece)
            yield TokenEvent(piece)
            if hygiene and repetition_start("".join(pieces)) is not None:
                break  # leaving the loop closes the stream, which ends the request
        text = "".join(pieces)
        cut = repetition_start(text) if hygiene else None
        text = (text if cut is None else text[:cut]).strip()
        claims = (
            await asyncio.to_thread(self.verifier.verify, text, sources, judged)
            if self.verifier
            else []
        )
        if mode is AnswerMode.AUTO:
            supported = [c for c in claims if c.support is Support.SUPPORTED]
            if self.verifier is not None and not supported:  # includes "could not find"
                yield DoneEvent(
                    await self._quoted(
                        judged,
                        hits,
                        mode,
                        retrieval_ms,
                        started,
                        claims,
                        info.model,
                        ttft_ms,
                        quotes=quotes,
                    )
                )
                return
            shown = " ".join(c.text for c in supported) if self.verifier else text
            text = with_attributed_markers(shown, supported)
            removed = len(claims) - len(supported)
        else:
            text = with_attributed_markers(text, claims)
            removed = 0
        timings = _timings(retrieval_ms, ttft_ms, started)
        if claims and not any(c.support is Support.SUPPORTED for c in claims):
            # Nothing the model said is backed by the passages: say so, keep the passages.
            unanswered = _nothing_backed(
                AnswerKind.UNANSWERED,
                sources,
                mode,
                timings,
                model=info.model,
                draft=claims,
                removed=removed,
            )
            yield DoneEvent(unanswered)
            return
        citations, invalid = parse_citations(text, sources)
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
                grounded=True,
                mode=mode,
                kind=AnswerKind.GENERATED,
                removed=removed,
            )
        )

    async def _quoted(
        self,
        question: str,
        hits: Sequence[Hit],
        mode: AnswerMode,
        retrieval_ms: float,
        started: float,
        generated: Sequence[Claim] = (),
        model: str = "",
        ttft_ms: float | None = None,
        *,
        quotes: Sequence[Quote] | None = None,
    ) -> Answer:
        """Quotes from the passages; ``generated`` are the model's claims it replaces.

        ``quotes``: the extractor's quotes when already chosen for this question and hits.
        """
        if self.extractor is None:
            raise RuntimeError("quote mode needs an AnswerEngine built with a QuoteExtractor")
        sources = list(hits)
        if quotes is None:
            quotes = await asyncio.to_thread(self.extractor.quotes, question, sources)
        if not quotes:  # every sentence is a table row, page furniture or an echo
            timings = _timings(retrieval_ms, ttft_ms, started)
            return _nothing_backed(
                AnswerKind.UNANSWERED,
                sources,
                mode,
                timings,
                model=model,
                draft=generated,
                removed=len(generated),
            )
        text = quoted_answer(quotes)
        claims = [quote.as_claim() for quote in quotes]
        citations, invalid = parse_citations(text, sources)
        return Answer(
            text=text,
            citations=citations,
            sources=sources,
            invalid_citations=invalid,
            timings=_timings(retrieval_ms, ttft_ms, started),
            model=model,
            claims=claims + list(generated),
            highlights=best_highlights(claims),
            grounded=True,
            mode=mode,
            kind=AnswerKind.QUOTED,
            removed=len(generated),
        )


def _nothing_backed(
    kind: AnswerKind,
    sources: Sequence[Hit],
    mode: AnswerMode,
    timings: Timings,
    *,
    model: str = "",
    draft: Sequence[Claim] = (),
    removed: int = 0,
    reason: str | None = None,
) -> Answer:
    """The not-found or unanswered reply; ``draft``: the model's claims, none backed."""
    text = NOT_FOUND_ANSWER if kind is AnswerKind.NOT_FOUND else UNANSWERED_TEXT
    return Answer(
        text=text,
        citations=[],
        sources=list(sources),
        invalid_citations=[],
        timings=timings,
        model=model,
        claims=list(draft),
        highlights={},
        grounded=False,
        mode=mode,
        kind=kind,
        removed=removed,
        not_found_reason=reason,
    )


def _timings(retrieval_ms: float, ttft_ms: float | None, started: float) -> Timings:
    return Timings(
        retrieval_ms=retrieval_ms,
        ttft_ms=ttft_ms,
        total_ms=retrieval_ms + (time.perf_counter() - started) * 1000,
    )


def best_highlights(claims: Sequence[Claim]) -> dict[int, Highlight]:
    """For each cited passage, the span that supports its best-backed claim."""
    best: dict[int, tuple[float, Highlight]] = {}
    for claim in claims:
        h = claim.highlight
        if h is not None and h.n in claim.citations and claim.score > best.get(h.n, (-1.0,))[0]:
            best[h.n] = (claim.score, h)
    return {n: h for n, (_, h) in best.items()}
