import pytest

from core.errors import QuestionTooLongError
from ingest.models import Chunk
from rag.conversation import Turn
from rag.generation import Message
from rag.prompts import SYSTEM_PROMPT, build_messages, fit_history, fit_passages
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


def turns(n: int) -> list[Turn]:
    return [Turn(f"question {i}", f"question {i}", f"answer {i} [1]") for i in range(n)]


def test_history_sits_between_the_example_and_the_passages() -> None:
    messages = build_messages("q", hits(1), turns(2))
    assert [m["role"] for m in messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert messages[3:5] == [
        {"role": "user", "content": "question 0"},
        {"role": "assistant", "content": "answer 0"},  # its [n] belonged to other passages
    ]


async def test_history_fills_what_the_passages_leave_oldest_dropped_first() -> None:
    passages = hits(3)
    bare = await count_words(build_messages("q", passages))
    # Room for two of three turns (4 words each) beside all the passages.
    kept = await fit_history(
        "q", passages, turns(3), count_tokens=count_words, budget_tokens=bare + 8
    )
    assert [t.question for t in kept] == ["question 1", "question 2"]
    none = await fit_history("q", passages, turns(3), count_tokens=count_words, budget_tokens=bare)
    assert none == []
