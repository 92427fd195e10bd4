"""What the answer engine needs from an LLM server; implemented in ``serving/vllm_client.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypedDict

from core.api_models import GeneratorStatus as GeneratorStatus


class Message(TypedDict):
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True, slots=True)
class GeneratorInfo:
    model: str
    context_length: int


class Generator(Protocol):
    """An LLM behind an OpenAI-compatible server.

    Every method raises ``core.errors.GeneratorUnavailableError`` when the server
    cannot be reached (down, still loading its model, or failing after retries).
    """

    async def status(self) -> GeneratorStatus: ...

    async def info(self) -> GeneratorInfo: ...

    async def count_tokens(self, messages: Sequence[Message]) -> int:
        """Tokens the prompt takes once the chat template is applied."""
        ...

    def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        temperature: float,
        stop: Sequence[str] = (),
    ) -> AsyncIterator[str]:
        """Yield the answer's text as it is generated, ending before any ``stop`` string."""
        ...

    async def aclose(self) -> None: ...
