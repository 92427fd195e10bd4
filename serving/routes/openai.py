"""OpenAI-compatible chat: /chat/completions and /models under /v1/sessions/{id}, and the
mapping between OpenAI chat shapes and our conversation and answers."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from core import api_models as models
from core import openai_models
from core.errors import GeneratorUnavailableError, InvalidRequestError, PGPTError
from rag.answer import Answer, AnswerEvent, DoneEvent, TokenEvent
from rag.answering import AskOptions, last_answer
from rag.conversation import Turn
from rag.followup import replayed
from serving import responses
from serving.http_errors import unavailable_response
from serving.routes.answers import start
from serving.routes.deps import ServicesDep, SessionDep, event_stream

MAX_QUESTION_CHARS = 4000  # as /query allows
SERVED_SINCE = int(time.time())  # the `created` of the one model /models lists

router = APIRouter()


@dataclass(frozen=True, slots=True)
class CompletionIds:
    id: str
    created: int

    @classmethod
    def new(cls) -> CompletionIds:
        return cls(id=f"chatcmpl-{secrets.token_hex(12)}", created=int(time.time()))


def conversation(messages: Sequence[openai_models.ChatMessage]) -> tuple[str, list[Turn]]:
    """The last user message is the question; earlier user/assistant pairs are the history.

    System and tool messages are left out: our own instructions keep answers grounded.
    """
    last = messages[-1]
    question = last.text.strip()
    if last.role != "user" or not question:
        raise InvalidRequestError(
            "The last message must be the user's question (role 'user', with text)."
        )
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidRequestError(
            f"The question has {len(question):,} characters; at most {MAX_QUESTION_CHARS:,} "
            "are accepted. Shorten it."
        )
    exchanges: list[tuple[str, str]] = []
    asked: str | None = None
    for message in messages[:-1]:
        if message.role == "user":
            asked = message.text.strip() or asked
        elif message.role == "assistant" and asked is not None:
            exchanges.append((asked, message.text.strip()))
            asked = None
    return question, replayed(exchanges)


def answered_by(answer: Answer) -> str:
    """The model that wrote ``answer``; for quotes, which no model wrote, the service's name
    (the one model /models lists)."""
    return answer.model or openai_models.CHAT_MODEL_ID


def completion(ids: CompletionIds, answer: Answer, standalone: str) -> openai_models.ChatCompletion:
    return openai_models.ChatCompletion(
        id=ids.id,
        created=ids.created,
        model=answered_by(answer),
        choices=[
            openai_models.ChatChoice(message=openai_models.AssistantMessage(content=answer.text))
        ],
        pgpt=responses.query_result(answer, standalone),
    )


async def chunk_events(
    events: AsyncIterator[AnswerEvent], ids: CompletionIds, model: str, standalone: str
) -> AsyncIterator[str]:
    """``chat.completion.chunk`` data events, the last with ``pgpt``, then ``[DONE]``.

    The tokens are the model's draft; the final chunk's ``pgpt.answer`` is the checked
    answer (the not-found reply when no sentence was backed by the passages).
    """

    def chunk(
        delta: openai_models.ChunkDelta,
        *,
        finished: bool = False,
        result: models.QueryResult | None = None,
    ) -> str:
        body = openai_models.ChatCompletionChunk(
            id=ids.id,
            created=ids.created,
            model=model,
            choices=[
                openai_models.ChunkChoice(delta=delta, finish_reason="stop" if finished else None)
            ],
            pgpt=result,
        ).model_dump(mode="json")
        # As OpenAI sends them: a delta holds only what it carries; pgpt only on the last.
        body["choices"][0]["delta"] = delta.model_dump(exclude_none=True)
        if result is None:
            del body["pgpt"]
        return data(body)

    yield chunk(openai_models.ChunkDelta(role="assistant", content=""))
    try:
        async for event in events:
            if isinstance(event, TokenEvent):
                yield chunk(openai_models.ChunkDelta(content=event.text))
            else:
                result = responses.query_result(event.answer, standalone)
                yield chunk(openai_models.ChunkDelta(), finished=True, result=result)
    except PGPTError as exc:
        error = models.ErrorDetail(code=exc.code, message=exc.message, type=models.ErrorType.SERVER)
        yield data({"error": error.model_dump()})
    yield "data: [DONE]\n\n"


def data(body: Any) -> str:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


@router.post(
    "/sessions/{session_id}/chat/completions",
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "chat.completion, or chat.completion.chunk events when stream",
        },
        503: {"model": models.UnavailableBody},
    },
)
async def chat_completions(
    body: openai_models.ChatCompletionRequest, session: SessionDep, services: ServicesDep
) -> Response:
    """OpenAI-compatible: point an OpenAI client's ``base_url`` at ``/v1/sessions/<id>``.

    The conversation comes from ``messages`` (the session's own conversation is not used
    or changed); citations, sources and claims are in the extra top-level field ``pgpt``.
    """
    question, history = conversation(body.messages)
    options = AskOptions(
        max_tokens=body.max_completion_tokens or body.max_tokens,
        temperature=body.temperature,
        history=history,  # the client's, not the session's: nothing is recorded
    )
    started = await start(await services.answers.ask(session, question, options))
    if isinstance(started, JSONResponse):
        return started
    standalone, events = started.standalone, started.events
    ids = CompletionIds.new()
    if not body.stream:
        try:
            answer = await last_answer(events)
        except GeneratorUnavailableError as exc:  # the model died mid-answer
            return unavailable_response(exc, started.hits)
        done = completion(ids, answer, standalone)
        return JSONResponse(done.model_dump(mode="json"))
    model = (
        answered_by(started.first.answer)  # answered at once: no model needed
        if isinstance(started.first, DoneEvent)
        else (await services.generator.info()).model  # known by now: the model is writing
    )
    return event_stream(chunk_events(events, ids, model, standalone))


@router.get("/sessions/{session_id}/models")
def list_models(session: SessionDep) -> openai_models.ModelList:
    """The one model an OpenAI client can pick here: answers from this session's documents."""
    card = openai_models.ModelCard(id=openai_models.CHAT_MODEL_ID, created=SERVED_SINCE)
    return openai_models.ModelList(data=[card])
