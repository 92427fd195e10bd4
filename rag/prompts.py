"""Grounded prompts: fixed instructions, then numbered passages, then the question.

That order keeps the longest shared prefix first, so vLLM's prefix cache reuses it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from core.errors import QuestionTooLongError
from rag.generation import Message
from rag.retrieval import Hit

NOT_FOUND_ANSWER = "I could not find this in your documents."

SYSTEM_PROMPT = f"""You answer questions using only the numbered passages from the user's documents.
Rules:
- Use only facts stated in the passages, never outside knowledge.
- After each sentence, cite the passages it uses as [n], for example [1] or [2][3].
- If the passages do not contain the answer, reply exactly: {NOT_FOUND_ANSWER}
- Be concise and answer in the language of the question."""


def format_passage(n: int, hit: Hit) -> str:
    chunk = hit.chunk
    where = f"{chunk.filename}, page {chunk.pages_label}"
    return f"[{n}] ({where})\n{chunk.text.strip()}"


def build_messages(question: str, passages: Sequence[Hit]) -> list[Message]:
    body = "\n\n".join(format_passage(n, hit) for n, hit in enumerate(passages, start=1))
    user = f"Passages:\n\n{body}\n\nQuestion: {question.strip()}"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


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
