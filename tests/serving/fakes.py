"""A scripted generator for fast route tests; the real vLLM server is tested elsewhere."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from core.errors import GeneratorUnavailableError
from rag.generation import GeneratorInfo, GeneratorStatus, Message


class ScriptedGenerator:
    def __init__(self, answer: str = "The big model was trained on 8 P100 GPUs [1].") -> None:
        self.answer = answer
        self.available = True
        self.fail_after_words: int | None = None  # the server dies mid-answer
        self.down_status = GeneratorStatus.UNAVAILABLE  # what status() says while unavailable
        self.context_length = 4096
        self.last_messages: Sequence[Message] = []

    def _check(self) -> None:
        if not self.available:
            raise GeneratorUnavailableError("The language model is not reachable.")

    async def status(self) -> GeneratorStatus:
        return GeneratorStatus.READY if self.available else self.down_status

    async def info(self) -> GeneratorInfo:
        self._check()
        return GeneratorInfo(model="scripted", context_length=self.context_length)

    async def count_tokens(self, messages: Sequence[Message]) -> int:
        self._check()
        return sum(len(m["content"]) // 4 for m in messages)

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        temperature: float,
        stop: Sequence[str] = (),
    ) -> AsyncIterator[str]:
        self._check()
        self.last_messages = messages
        for index, word in enumerate(self.answer.split(" ")):
            if index == self.fail_after_words:
                raise GeneratorUnavailableError("Lost the connection to the LLM server mid-answer.")
            yield word + " "

    async def aclose(self) -> None:
        pass
