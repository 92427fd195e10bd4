"""Answers: search the session's passages, and answer a question from them (/query)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from core import api_models as models
from core.errors import GeneratorUnavailableError, PGPTError
from core.settings import AnswerMode
from rag.answer import Answer, AnswerEvent, DoneEvent, TokenEvent
from rag.conversation import Turn, latest
from rag.retrieval import Hit
from rag.sessions import Session
from serving import responses
from serving.http_errors import unavailable_body, unavailable_response
from serving.routes.deps import ServicesDep, SessionDep, event_stream, sse
from serving.wiring import Services

router = APIRouter()


@router.post("/sessions/{session_id}/search")
async def search(
    body: models.SearchRequest, session: SessionDep, services: ServicesDep
) -> models.SearchResult:
    hits, _ = await services.engine.retrieve(
        session, body.query, top_k=body.top_k, score_threshold=services.settings.score_threshold
    )
    return models.SearchResult(results=[responses.passage(h) for h in hits])


@router.post(
    "/sessions/{session_id}/query",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE when stream"},
        503: {"model": models.UnavailableBody},
    },
)
async def query(body: models.QueryRequest, session: SessionDep, services: ServicesDep) -> Response:
    history = session.conversation.turns() if body.use_conversation else []
    started = await start_answer(
        services,
        session,
        body.question,
        history,
        top_k=body.top_k,
        max_tokens=body.max_tokens,
        temperature=body.temperature,
        mode=body.answer_mode,
    )
    if isinstance(started, JSONResponse):
        return started
    standalone, events, hits = started.standalone, started.events, started.hits
    if body.use_conversation:
        events = recorded(events, session, body.question, standalone)
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


async def start_answer(
    services: Services,
    session: Session,
    question: str,
    history: list[Turn],
    *,
    top_k: int,
    max_tokens: int | None,
    temperature: float | None,
    mode: AnswerMode | None = None,
) -> Started | JSONResponse:
    """Rewrite a follow-up, retrieve, and begin the answer, or a 503 (with the passages)
    when the generator cannot be reached."""
    settings = services.settings
    standalone = await services.rewriter.rewrite(question, history)
    hits, retrieval_ms = await services.engine.retrieve(
        session, standalone, top_k=top_k, score_threshold=settings.score_threshold
    )
    events = services.engine.stream(
        question,
        hits,
        max_tokens=max_tokens or settings.answer_max_tokens,
        temperature=settings.temperature if temperature is None else temperature,
        retrieval_ms=retrieval_ms,
        history=latest(history, settings.conversation_prompt_turns),
        mode=mode or settings.answer_mode,
        standalone=standalone,
    )
    try:
        # Pull the first event before answering, so an unreachable generator is a clean 503.
        first = await anext(events)
    except GeneratorUnavailableError as exc:
        return unavailable_response(exc, hits)
    return Started(standalone, chained(first, events), hits, first)


async def chained(
    first: AnswerEvent, rest: AsyncIterator[AnswerEvent]
) -> AsyncIterator[AnswerEvent]:
    yield first
    async for event in rest:
        yield event


async def last_answer(events: AsyncIterator[AnswerEvent]) -> Answer:
    """The final answer. The stream is read to its end (the DoneEvent is its last event)
    so that its generators finish now and release what they hold, such as earlier turns."""
    answer: Answer | None = None
    async for event in events:
        if isinstance(event, DoneEvent):
            answer = event.answer
    if answer is None:
        raise AssertionError("an answer stream always ends with a DoneEvent")
    return answer


async def recorded(
    events: AsyncIterator[AnswerEvent], session: Session, question: str, standalone: str
) -> AsyncIterator[AnswerEvent]:
    """The events, with the finished answer added to the session's conversation."""
    async for event in events:
        if isinstance(event, DoneEvent):
            session.conversation.add(responses.turn(question, standalone, event.answer))
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
