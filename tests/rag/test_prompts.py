import pytest

from core.errors import QuestionTooLongError
from ingest.models import Chunk
from rag.generation import Message
from rag.prompts import SYSTEM_PROMPT, build_messages, fit_passages
from rag.retrieval import Hit


def hits(n: int) -> list[Hit]:
    return [Hit(Chunk("d", "f.pdf", "word " * 50, i, i, 0, 250), 0.9 - i / 100) for i in range(n)]


async def count_words(messages: list[Message]) -> int:
    return sum(len(m["content"].split()) for m in messages)


def test_order_is_instructions_passages_question() -> None:
    messages = build_messages("How many GPUs?", hits(2))
    assert messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
    # The worked example is fixed too: it belongs to the cached prefix.
    assert messages[1:3] == build_messages("other", hits(1))[1:3]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    user = messages[-1]["content"]
    assert user.index("[1] (f.pdf, page 0)") < user.index("[2] (f.pdf, page 1)")
    assert user.rstrip().endswith("Question: How many GPUs?")


async def test_lowest_ranked_passages_are_dropped_whole() -> None:
    full = await count_words(build_messages("q", hits(5)))
    kept = await fit_passages("q", hits(5), count_tokens=count_words, budget_tokens=full - 1)
    assert [h.chunk.page for h in kept] == [0, 1, 2, 3]
    assert all(h.chunk.text == "word " * 50 for h in kept)


async def test_question_that_cannot_fit_is_refused() -> None:
    with pytest.raises(QuestionTooLongError):
        await fit_passages("q " * 100, hits(2), count_tokens=count_words, budget_tokens=10)
