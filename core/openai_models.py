"""The bodies of the OpenAI-compatible chat endpoint (/v1/sessions/{id}/chat/completions
and /models): OpenAI's shapes, with the grounded result in the extra ``pgpt`` field."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.api_models import QueryResult

CHAT_MODEL_ID = "privategptpp"  # what /models lists: answers grounded in the session's documents


class TextPart(BaseModel):
    """One part of a message's content in the list form OpenAI clients may send."""

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text or "" for part in self.content if part.type == "text")
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    """An OpenAI chat request; fields clients send that we do not use (n, top_p, user,
    stream_options ...) are ignored. History comes from ``messages``, not the session."""

    model_config = ConfigDict(extra="ignore")

    model: str = CHAT_MODEL_ID
    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=16, le=4096)
    max_completion_tokens: int | None = Field(default=None, ge=16, le=4096)
    temperature: float | None = Field(default=None, ge=0, le=2)


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"


class ChatCompletion(BaseModel):
    """A standard ``chat.completion``; ``pgpt`` is the extra field standard clients ignore."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    pgpt: QueryResult = Field(
        description="The grounded result: standalone question, citations, sources, claims."
    )


class ChunkDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: Literal["stop"] | None = None


class ChatCompletionChunk(BaseModel):
    """One ``data:`` event of a streamed completion; the last one carries ``pgpt``."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    pgpt: QueryResult | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "privategptpp"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
