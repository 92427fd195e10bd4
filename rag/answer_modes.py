"""One strategy per answer mode (PGPT_ANSWER_MODE): how it combines the steps of
AnswerEngine (rag/answer.py) into a stream of tokens and one final answer.

Each strategy yields TokenEvents (the model's draft, if it asks the model), then exactly
one DoneEvent. Those that ask the model raise GeneratorUnavailableError before the first
token when the LLM is down.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence

from core.errors import GeneratorUnavailableError
from core.settings import AnswerMode, AutoOrder
from rag.answer import AnswerEngine, AnswerEvent, AnswerRequest, DoneEvent, Draft
from rag.extract import Quote
from rag.followup import SMALL_MODELS
from rag.verification import with_attributed_markers

Strategy = Callable[[AnswerEngine, AnswerRequest], AsyncIterator[AnswerEvent]]


async def extract(engine: AnswerEngine, request: AnswerRequest) -> AsyncIterator[AnswerEvent]:
    """Quotes from the passages; never calls the LLM."""
    yield DoneEvent(engine.not_found(request) or await engine.quoted(request))


async def generate(engine: AnswerEngine, request: AnswerRequest) -> AsyncIterator[AnswerEvent]:
    """The model's answer as written, or the passages' closest sentences as unverified
    evidence when none of its sentences is backed by the passages."""
    draft = Draft()
    async for token in engine.write(request, draft, hygiene=False):
        yield token
    if draft.claims and not draft.supported:
        yield DoneEvent(await engine.evidence(request, draft, draft.sources, removed=0))
        return
    text = with_attributed_markers(draft.text, draft.claims)
    yield DoneEvent(engine.generated(request, draft, text, removed=0))


async def auto(engine: AnswerEngine, request: AnswerRequest) -> AsyncIterator[AnswerEvent]:
    """Confident quotes when there are some (no generation); otherwise the model's backed
    sentences, or quotes again when none of them is backed. With a capable model
    (PGPT_AUTO_ORDER), its backed sentences first and quotes when none is backed."""
    not_found = engine.not_found(request)
    if not_found is not None:
        yield DoneEvent(not_found)
        return
    if await model_first(engine, request.auto_order):
        async for event in backed_sentences(engine, request, None):
            yield event
        return
    # A confident quote is right more often than the small model's backed sentences
    # (docs/benchmarks/answers-auto.md), and needs no generation.
    quotes = await engine.quotes(request)
    if quotes:
        yield DoneEvent(await engine.quoted(request, quotes=quotes))
        return
    async for event in backed_sentences(engine, request, quotes):
        yield event


async def backed_sentences(
    engine: AnswerEngine, request: AnswerRequest, quotes: Sequence[Quote] | None
) -> AsyncIterator[AnswerEvent]:
    """Ask the model and show only its backed sentences; the passages' quotes instead when
    none is (``quotes``: the extractor's, if already chosen)."""
    draft = Draft()
    async for token in engine.write(request, draft, hygiene=True):
        yield token
    if engine.verifier is None:
        yield DoneEvent(engine.generated(request, draft, draft.text, removed=0))
        return
    supported = draft.supported
    if not supported:  # includes "could not find"
        yield DoneEvent(await engine.quoted(request, draft, quotes=quotes))
        return
    text = with_attributed_markers(" ".join(c.text for c in supported), supported)
    yield DoneEvent(
        engine.generated(request, draft, text, removed=len(draft.claims) - len(supported))
    )


def resolved_order(order: AutoOrder, model: str | None) -> AutoOrder:
    """PGPT_AUTO_ORDER for the served ``model`` (None: unknown, the model is down): 'auto'
    is model-first for any model but the tiny embedded one, whose own sentences are rarely
    right (docs/benchmarks/answers-auto.md)."""
    if order != "auto":
        return order
    return "model-first" if model is not None and model not in SMALL_MODELS else "quotes-first"


async def model_first(engine: AnswerEngine, order: AutoOrder) -> bool:
    """Whether ``auto`` asks the model before quoting (quotes need no model when it is down)."""
    model = None
    if order == "auto":
        with contextlib.suppress(GeneratorUnavailableError):
            model = (await engine.generator.info()).model
    return resolved_order(order, model) == "model-first"


STRATEGIES: dict[AnswerMode, Strategy] = {
    AnswerMode.AUTO: auto,
    AnswerMode.GENERATE: generate,
    AnswerMode.EXTRACT: extract,
}


def answer(engine: AnswerEngine, request: AnswerRequest) -> AsyncIterator[AnswerEvent]:
    """The events of ``request.mode``'s strategy."""
    return STRATEGIES[request.mode](engine, request)
