"""Retrieved passages + question -> a streamed, grounded answer with citations: what an
answer is, and the steps (quote, write, verify) that the answer modes combine."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from core.api_models import AnswerKind as AnswerKind
from core.settings import AnswerMode, AutoOrder
from rag.citations import Citation, parse_citations
from rag.conversation import Turn
from rag.extract import Quote, QuoteExtractor, quoted_answer
from rag.followup import SMALL_MODELS
from rag.generation import Generator
from rag.hygiene import (
    SMALL_MODEL_FACTUAL_SENTENCES,
    STOP_SEQUENCES,
    answer_token_cap,
    budget_end,
    factual_sentence_budget,
    repetition_start,
)
from rag.prompts import NOT_FOUND_ANSWER, build_messages, fit_history, fit_passages
from rag.retrieval import Hit, Retriever
from rag.sessions import Session
from rag.verification import CitationVerifier, Claim, Highlight, Support


@dataclass(frozen=True, slots=True)
class Timings:
    retrieval_ms: float
    ttft_ms: float | None
    total_ms: float


# Shown instead of an answer when passages were found but nothing the model wrote holds up
# against them and no sentence of theirs can be quoted (every one a table row or an echo).
UNANSWERED_TEXT = (
    "No sentence in the passages found answers this directly, so no answer is shown. "
    "The closest passages are below."
)
# Leads the evidence reply: the passages' closest sentences follow, each cited with its page.
EVIDENCE_INTRO = "Not checked as an answer — the passages' closest sentences:"


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
    grounded: bool  # False: nothing backed; `text` is the not-found, evidence or unanswered reply
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


@dataclass(frozen=True, slots=True)
class AnswerRequest:
    """One question to answer from ``hits``, as a mode's strategy receives it.

    ``history``: earlier turns for the prompt, as many of the latest as fit.
    ``standalone``: a follow-up rewritten with its context ("its training" -> the big
    model's); claims and quotes are judged against it, since they cannot see history.
    """

    question: str
    hits: Sequence[Hit]
    max_tokens: int
    temperature: float
    mode: AnswerMode = AnswerMode.GENERATE
    retrieval_ms: float = 0.0
    history: Sequence[Turn] = ()
    standalone: str | None = None
    started: float = field(default_factory=time.perf_counter)
    auto_order: AutoOrder = "quotes-first"  # PGPT_AUTO_ORDER, as settings resolve it per request
    # The extractor's closest sentences per set of sources: quotes and evidence share them.
    closest_memo: dict[tuple[int, ...], list[Quote]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def judged(self) -> str:
        """The question that claims and quotes are checked against."""
        return self.standalone or self.question

    def timings(self, ttft_ms: float | None = None) -> Timings:
        return _timings(self.retrieval_ms, ttft_ms, self.started)


@dataclass
class Draft:
    """What the model wrote and how its sentences are backed; filled in by
    ``AnswerEngine.write`` as the tokens stream."""

    sources: list[Hit] = field(default_factory=list)  # the passages that fit the prompt
    text: str = ""
    claims: list[Claim] = field(default_factory=list)
    model: str = ""
    ttft_ms: float | None = None

    @property
    def supported(self) -> list[Claim]:
        return [c for c in self.claims if c.support is Support.SUPPORTED]


class AnswerEngine:
    """The steps answers are made of; each answer mode (rag/answer_modes.py) combines them."""

    def __init__(
        self,
        retriever: Retriever,
        generator: Generator,
        verifier: CitationVerifier | None = None,
        extractor: QuoteExtractor | None = None,
        *,
        min_score: float | None = None,
    ) -> None:
        self.retriever = retriever
        self.generator = generator
        self.verifier = verifier
        self.extractor = extractor
        self.min_score = min_score

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

    def not_found(self, request: AnswerRequest) -> Answer | None:
        """The not-found reply when no passage is relevant enough, else None."""
        reason = self.not_found_reason(request.hits)
        if reason is None:
            return None
        return _nothing_backed(
            AnswerKind.NOT_FOUND, request.hits, request.mode, request.timings(), reason=reason
        )

    async def quotes(self, request: AnswerRequest) -> list[Quote] | None:
        """The extractor's confident quotes for the question (None without an extractor)."""
        if self.extractor is None:
            return None
        return self.extractor.confident(await self._closest(request, request.hits))

    async def _closest(self, request: AnswerRequest, sources: Sequence[Hit]) -> list[Quote]:
        """The extractor's closest sentences of ``sources``, scored once per request: a
        reply that finds no confident quote and then shows evidence needs them twice."""
        if self.extractor is None:
            return []
        key = tuple(id(hit.chunk) for hit in sources)
        if key not in request.closest_memo:
            request.closest_memo[key] = await asyncio.to_thread(
                self.extractor.closest, request.judged, sources
            )
        return request.closest_memo[key]

    async def write(
        self, request: AnswerRequest, draft: Draft, *, hygiene: bool
    ) -> AsyncIterator[TokenEvent]:
        """Ask the model: yield its tokens, then fill ``draft`` with its text and claims.

        ``hygiene``: cap the length by the question, stop at stop sequences, at a
        repetition loop and, for a small model, after the factual answer's sentence budget.
        Raises GeneratorUnavailableError before the first token when the LLM is down.
        """
        question, max_tokens = request.question, request.max_tokens
        info = await self.generator.info()
        draft.model = info.model
        sentences = 0
        if hygiene:
            max_tokens = answer_token_cap(question, max_tokens)
            if info.model in SMALL_MODELS:
                sentences = factual_sentence_budget(question, SMALL_MODEL_FACTUAL_SENTENCES)
        budget = info.context_length - max_tokens
        count_tokens = self.generator.count_tokens
        draft.sources = await fit_passages(
            question, request.hits, count_tokens=count_tokens, budget_tokens=budget
        )
        history = request.history
        if history:
            history = await fit_history(
                question, draft.sources, history, count_tokens=count_tokens, budget_tokens=budget
            )
        messages = build_messages(question, draft.sources, history)
        pieces: list[str] = []
        tokens = self.generator.stream(
            messages,
            max_tokens=max_tokens,
            temperature=request.temperature,
            stop=STOP_SEQUENCES if hygiene else (),
        )
        async for piece in tokens:
            if draft.ttft_ms is None:
                draft.ttft_ms = (time.perf_counter() - request.started) * 1000
            pieces.append(piece)
            yield TokenEvent(piece)
            if hygiene and _cut(pieces, sentences) is not None:
                break  # leaving the loop closes the stream, which ends the request
        text = "".join(pieces)
        cut = _cut(pieces, sentences) if hygiene else None
        draft.text = (text if cut is None else text[:cut]).strip()
        if self.verifier is not None:
            draft.claims = await asyncio.to_thread(
                self.verifier.verify, draft.text, draft.sources, request.judged
            )

    def generated(self, request: AnswerRequest, draft: Draft, text: str, removed: int) -> Answer:
        """The model's answer: ``text`` (with its citation markers) over the draft's sources."""
        citations, invalid = parse_citations(text, draft.sources)
        return Answer(
            text=text,
            citations=citations,
            sources=draft.sources,
            invalid_citations=invalid,
            timings=request.timings(draft.ttft_ms),
            model=draft.model,
            claims=draft.claims,
            highlights=best_highlights(draft.claims),
            grounded=True,
            mode=request.mode,
            kind=AnswerKind.GENERATED,
            removed=removed,
        )

    async def evidence(
        self, request: AnswerRequest, draft: Draft, sources: Sequence[Hit], removed: int
    ) -> Answer:
        """Nothing passed the checks: the passages' closest sentences (the extractor's, of
        any confidence), cited with their pages and marked as unverified evidence, beside
        the model's unbacked draft. The unanswered reply when no sentence can be quoted."""
        closest = await self._closest(request, sources)
        if not closest:
            return _nothing_backed(
                AnswerKind.UNANSWERED,
                sources,
                request.mode,
                request.timings(draft.ttft_ms),
                model=draft.model,
                draft=draft.claims,
                removed=removed,
            )
        return _from_passages(
            request,
            draft,
            sources,
            evidence_text(closest, sources),
            AnswerKind.EVIDENCE,
            claims=list(draft.claims),
            highlights={q.n: Highlight(q.n, q.start, q.end) for q in reversed(closest)},
            removed=removed,
        )

    async def quoted(
        self,
        request: AnswerRequest,
        draft: Draft | None = None,
        *,
        quotes: Sequence[Quote] | None = None,
    ) -> Answer:
        """Quotes from the passages; ``draft``: the model's answer they replace.

        ``quotes``: the extractor's quotes when already chosen for this question and hits.
        """
        if self.extractor is None:
            raise RuntimeError("quote mode needs an AnswerEngine built with a QuoteExtractor")
        draft = draft or Draft()
        generated = draft.claims
        sources = list(request.hits)
        if quotes is None:
            quotes = await self.quotes(request)
        if not quotes:  # none confident enough to be the answer: show them as evidence
            return await self.evidence(request, draft, sources, removed=len(generated))
        claims = [quote.as_claim() for quote in quotes]
        return _from_passages(
            request,
            draft,
            sources,
            quoted_answer(quotes),
            AnswerKind.QUOTED,
            claims=claims + list(generated),
            highlights=best_highlights(claims),
            removed=len(generated),
        )


def _from_passages(
    request: AnswerRequest,
    draft: Draft,
    sources: Sequence[Hit],
    text: str,
    kind: AnswerKind,
    *,
    claims: list[Claim],
    highlights: dict[int, Highlight],
    removed: int,
) -> Answer:
    """An answer made of the passages' sentences: quoted (as the answer) or evidence."""
    citations, invalid = parse_citations(text, sources)
    return Answer(
        text=text,
        citations=citations,
        sources=list(sources),
        invalid_citations=invalid,
        timings=request.timings(draft.ttft_ms),
        model=draft.model,
        claims=claims,
        highlights=highlights,
        grounded=kind is AnswerKind.QUOTED,
        mode=request.mode,
        kind=kind,
        removed=removed,
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


def evidence_text(quotes: Sequence[Quote], sources: Sequence[Hit]) -> str:
    """EVIDENCE_INTRO, then each quote with its citation and the page it stands on."""
    parts = [EVIDENCE_INTRO]
    for quote in quotes:
        chunk = sources[quote.n - 1].chunk
        page, _ = chunk.locate(quote.start)
        parts.append(f"{quote.cited()} ({chunk.filename}, {chunk.page_unit} {page})")
    return " ".join(parts)


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


def _cut(pieces: Sequence[str], sentences: int) -> int | None:
    """Where the streamed text should end: a repetition loop, or the sentence budget."""
    text = "".join(pieces)
    ends = [at for at in (repetition_start(text), budget_end(text, sentences)) if at is not None]
    return min(ends, default=None)
