"""OpenAI chat shapes <-> our conversation and answers, for /v1/sessions/{id}/chat/completions."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from core import api_models as models
from core.errors import InvalidRequestError, PGPTError
from rag.answer import Answer, AnswerEvent, TokenEvent
from rag.conversation import Turn
from rag.followup import replayed
from serving import responses

MAX_QUESTION_CHARS = 4000  # as /query allows


@dataclass(frozen=True, slots=True)
class CompletionIds:
    id: str
    created: int

    @classmethod
    def new(cls) -> CompletionIds:
        return cls(id=f"chatcmpl-{secrets.token_hex(12)}", created=int(time.time()))


def conversation(messages: Sequence[models.ChatMessage]) -> tuple[str, list[Turn]]:
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
    return answer.model or models.CHAT_MODEL_ID


def completion(ids: CompletionIds, answer: Answer, standalone: str) -> models.ChatCompletion:
    return models.ChatCompletion(
        id=ids.id,
        created=ids.created,
        model=answered_by(answer),
        choices=[models.ChatChoice(message=models.AssistantMessage(content=answer.text))],
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
        delta: models.ChunkDelta,
        *,
        finished: bool = False,
        result: models.QueryResult | None = None,
    ) -> str:
        body = models.ChatCompletionChunk(
            id=ids.id,
            created=ids.created,
            model=model,
            choices=[models.ChunkChoice(delta=delta, finish_reason="stop" if finished else None)],
            pgpt=result,
        ).model_dump(mode="json")
        # As OpenAI sends them: a delta holds only what it carries; pgpt only on the last.
        body["choices"][0]["delta"] = delta.model_dump(exclude_none=True)
        if result is None:
            del body["pgpt"]
        return data(body)

    yield chunk(models.ChunkDelta(role="assistant", content=""))
    try:
        async for event in events:
            if isinstance(event, TokenEvent):
                yield chunk(models.ChunkDelta(content=event.text))
            else:
                result = responses.query_result(event.answer, standalone)
                yield chunk(models.ChunkDelta(), finished=True, result=result)
    except PGPTError as exc:
        error = models.ErrorDetail(code=exc.code, message=exc.message, type="server_error")
        yield data({"error": error.model_dump()})
    yield "data: [DONE]\n\n"


def data(body: Any) -> str:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"
