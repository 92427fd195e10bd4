"""Answers: search the session's passages, and answer a question from them (/query)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from core import api_models as models
from core.errors import GeneratorUnavailableError, PGPTError
from rag.answer import AnswerEvent, TokenEvent
from rag.answering import Asked, AskOptions, last_answer
from rag.retrieval import Hit
from rag.text_check import check_text
from rag.verification import CitationVerifier
from serving import responses
from serving.http_errors import unavailable_body, unavailable_response
from serving.routes.deps import ServicesDep, SessionDep, event_stream, sse

router = APIRouter()


@router.post("/sessions/{session_id}/search")
async def search(
    body: models.SearchRequest, session: SessionDep, services: ServicesDep
) -> models.SearchResult:
    hits = await services.answers.search(session, body.query, top_k=body.top_k)
    return models.SearchResult(results=[responses.passage(h) for h in hits])


@router.post("/sessions/{session_id}/verify")
async def verify(
    body: models.VerifyRequest, session: SessionDep, services: ServicesDep
) -> models.VerifyResult:
    """Check any text against the session's documents, sentence by sentence."""

    async def search(sentence: str) -> list[Hit]:
        return await services.answers.search(session, sentence)

    verifier = services.answers.engine.verifier or CitationVerifier(services.embedder)
    return responses.verify_result(await check_text(body.text, search, verifier))


@router.post(
    "/sessions/{session_id}/query",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE when stream"},
        503: {"model": models.UnavailableBody},
    },
)
async def query(body: models.QueryRequest, session: SessionDep, services: ServicesDep) -> Response:
    options = AskOptions(
        top_k=body.top_k,
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        mode=body.answer_mode,
        history=None if body.use_conversation else (),  # None: the session's, recorded
    )
    started = await start(await services.answers.ask(session, body.question, options))
    if isinstance(started, JSONResponse):
        return started
    standalone, events, hits = started.standalone, started.events, started.hits
    if not body.stream:
        try:
            answer = await last_answer(events)
        except GeneratorUnavailableError as exc:  # the model died mid-answer
            return unavailable_response(exc, hits)
        result = responses.query_result(answer, standalone)
        return JSONResponse(result.model_dump(mode="json"))
    return event_stream(sse_events(events, standalone, hits))


@dataclass(frozen=True, slots=True)
class Started:
    """An answer under way: the question as searched, its events, the passages it uses."""

    standalone: str
    events: AsyncIterator[AnswerEvent]
    hits: list[Hit]
    first: AnswerEvent  # also the first of ``events``


async def start(asked: Asked) -> Started | JSONResponse:
    """The answer begun, or a 503 (with the passages) when the generator cannot be reached:
    the first event is read before any response is sent, so that failure is a clean 503."""
    try:
        first = await anext(asked.events)
    except GeneratorUnavailableError as exc:
        return unavailable_response(exc, asked.hits)
    return Started(asked.standalone, chained(first, asked.events), asked.hits, first)


async def chained(
    first: AnswerEvent, rest: AsyncIterator[AnswerEvent]
) -> AsyncIterator[AnswerEvent]:
    yield first
    async for event in rest:
        yield event


async def sse_events(
    events: AsyncIterator[AnswerEvent], standalone: str, hits: list[Hit]
) -> AsyncIterator[str]:
    """``token`` events with text, then one ``done`` event with the full result, or one
    ``error`` event with the retrieved passages: the tokens so far are not an answer."""
    try:
        async for event in events:
            if isinstance(event, TokenEvent):
                yield sse("token", models.TokenChunk(text=event.text).model_dump())
            else:
                result = responses.query_result(event.answer, standalone)
                yield sse("done", result.model_dump(mode="json"))
    except PGPTError as exc:
        yield sse("error", unavailable_body(exc, hits).model_dump(mode="json"))
