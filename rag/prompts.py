"""Grounded prompts: fixed instructions, the last turns of the conversation, then numbered
passages and the question.

That order keeps the longest shared prefix first, so vLLM's prefix cache reuses it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence

from core.errors import QuestionTooLongError
from rag.citations import CITATION_PATTERN
from rag.conversation import Turn
from rag.generation import Message
from rag.retrieval import Hit

NOT_FOUND_ANSWER = "I could not find this in your documents."
SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([.,;:!?])")

SYSTEM_PROMPT = f"""You answer questions using only the numbered passages from the user's documents.
Rules:
- Use only facts stated in the passages, never outside knowledge.
- Copy numbers, names and terms exactly as the passage writes them.
- End each sentence with the number of the passage it uses in brackets, like [1] or [2][3].
- If the passages do not contain the answer, reply exactly: {NOT_FOUND_ANSWER}
- Be concise and answer in the language of the question."""

# One worked example, as a fixed exchange: small models follow a shown format far better
# than a described one, and being fixed it stays inside the prefix vLLM caches.
EXAMPLE_QUESTION = """Passages:

[1] (report.pdf, page 4)
The plant opened in 1998 and today employs 120 people on two shifts.

[2] (report.pdf, page 9)
Its output doubled between 2010 and 2020.

Question: How many people does the plant employ?"""
EXAMPLE_ANSWER = "The plant employs 120 people [1]."


def format_passage(n: int, hit: Hit) -> str:
    chunk = hit.chunk
    where = f"{chunk.filename}, page {chunk.pages_label}"
    return f"[{n}] ({where})\n{chunk.text.strip()}"


def without_markers(text: str) -> str:
    """Text without its [n] markers (an earlier answer's numbers point to other passages)."""
    return SPACE_BEFORE_PUNCTUATION.sub(r"\1", " ".join(CITATION_PATTERN.sub("", text).split()))


def history_messages(history: Sequence[Turn]) -> list[Message]:
    messages: list[Message] = []
    for turn in history:
        messages.append({"role": "user", "content": turn.question.strip()})
        messages.append({"role": "assistant", "content": without_markers(turn.answer)})
    return messages


def build_messages(
    question: str, passages: Sequence[Hit], history: Sequence[Turn] = ()
) -> list[Message]:
    body = "\n\n".join(format_passage(n, hit) for n, hit in enumerate(passages, start=1))
    user = f"Passages:\n\n{body}\n\nQuestion: {question.strip()}"
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": EXAMPLE_QUESTION},
        {"role": "assistant", "content": EXAMPLE_ANSWER},
        *history_messages(history),
        {"role": "user", "content": user},
    ]


async def fit_passages(
    question: str,
    hits: Sequence[Hit],
    *,
    count_tokens: Callable[[list[Message]], Awaitable[int]],
    budget_tokens: int,
) -> list[Hit]:
    """Keep the best-ranked passages whose whole prompt fits ``budget_tokens``.

    The lowest-ranked passage is dropped first; passages are never cut.
    """
    kept = list(hits)
    while True:
        if await count_tokens(build_messages(question, kept)) <= budget_tokens:
            return kept
        if not kept:
            raise QuestionTooLongError(
                f"The question is too long for the model's context ({budget_tokens} tokens "
                "for prompt and passages). Shorten it."
            )
        kept.pop()


async def fit_history(
    question: str,
    passages: Sequence[Hit],
    history: Sequence[Turn],
    *,
    count_tokens: Callable[[list[Message]], Awaitable[int]],
    budget_tokens: int,
) -> list[Turn]:
    """The most recent turns that still fit beside ``passages``, oldest first.

    Runs after ``fit_passages``: passages keep priority, and the oldest turn goes first.
    """
    kept: list[Turn] = []
    for turn in reversed(history):
        candidate = [turn, *kept]
        if await count_tokens(build_messages(question, passages, candidate)) > budget_tokens:
            break
        kept = candidate
    return kept
