"""A follow-up question + the recent turns -> a standalone question to search with.

"How long did its training take?" retrieves nothing useful on its own; searched as
"How long did its training take? (P100 GPUs, train, big model)" it finds the passage.
Two ways, measured side by side in benchmarks/followup_bench.py: the LLM with a fixed
prompt, and (for models too small to rewrite reliably) carrying over the content words
of the previous question.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from core.errors import GeneratorUnavailableError
from core.settings import Settings
from rag.conversation import Turn
from rag.generation import Generator, Message
from rag.prompts import without_markers

# Models that rewrite worse than the keyword carry-over (docs/benchmarks/followup.md).
SMALL_MODELS = frozenset({"SmolLM2-135M-Instruct"})

WORD = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*")
# Words that point back to something said before.
ANAPHORS_TEXT = """
    it its it's itself they them their theirs themselves this these those he him his she her
    hers such same former latter
"""
ANAPHORS = frozenset(ANAPHORS_TEXT.split())
# Words that carry no topic: function words and the verbs questions are built with.
STOPWORDS_TEXT = """
    a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing done down during each
    few for from further had has have having here how i if in into is just me more most my
    no nor not now of off on once only or other our out over own should so some than that
    the then there to too under until up very was we were what when where which while who
    whom why will with would you your many much used use using make made get got take took
    taken give given find found mean means called say said tell known describe describes
    main kind type types way ways
"""
STOPWORDS = frozenset(STOPWORDS_TEXT.split()) | ANAPHORS
MIN_CONTENT_WORDS = 3  # a question with fewer leans on the conversation for its topic

LLM_MAX_TOKENS = 64
LLM_MAX_ANSWER_CHARS = 300  # of each earlier answer, in the rewrite prompt
LLM_REWRITE_TURNS = 2

REWRITE_PROMPT = """You rewrite the last question of a conversation so that it can be \
understood on its own.
Rules:
- Replace words like it, its, they, this or that with what they refer to in the conversation.
- Keep the meaning, the wording and the language of the question; add nothing else.
- If the question is already clear on its own, repeat it unchanged.
- Reply with the rewritten question only."""

EXAMPLE_CONVERSATION = """Conversation:
Question: When did the plant in Leeds open?
Answer: The plant in Leeds opened in 1998.

Last question: How many people does it employ?"""
EXAMPLE_REWRITE = "How many people does the plant in Leeds employ?"


class QuestionRewriter(Protocol):
    async def rewrite(self, question: str, history: Sequence[Turn]) -> str:
        """The question as it reads without the conversation; unchanged without history."""
        ...


def words(text: str) -> list[str]:
    return WORD.findall(text)


def content_phrases(text: str) -> list[str]:
    """Runs of consecutive content words, as written: "P100 GPUs", "train", "big model"."""
    phrases: list[str] = []
    run: list[str] = []
    for word in [*words(text), ""]:
        if word and word.lower() not in STOPWORDS:
            run.append(word)
        elif run:
            phrases.append(" ".join(run))
            run = []
    return phrases


def is_follow_up(question: str) -> bool:
    """Points back (it, its, they, this ...) or is too short to name its own topic."""
    lowered = [w.lower() for w in words(question)]
    content = [w for w in lowered if w not in STOPWORDS]
    return any(w in ANAPHORS for w in lowered) or len(content) < MIN_CONTENT_WORDS


class AsAsked:
    """No rewriting: the question is searched as asked."""

    async def rewrite(self, question: str, history: Sequence[Turn]) -> str:
        return question


class KeywordRewriter:
    """A follow-up gets the previous question's content words and entities appended.

    The previous *standalone* question, so a chain of follow-ups keeps its topic.
    """

    async def rewrite(self, question: str, history: Sequence[Turn]) -> str:
        return carry_over(question, history)


def carry_over(question: str, history: Sequence[Turn]) -> str:
    if not history or not is_follow_up(question):
        return question
    present = {w.lower() for w in words(question)}
    carried = [
        phrase
        for phrase in content_phrases(history[-1].standalone_question)
        if not all(w.lower() in present for w in words(phrase))
    ]
    if not carried:
        return question
    return f"{question.strip()} ({', '.join(dict.fromkeys(carried))})"


class LlmRewriter:
    """The LLM rewrites with a fixed prompt; the keyword carry-over when its reply is unusable
    or the LLM is down (retrieval must keep working without it)."""

    def __init__(self, generator: Generator) -> None:
        self._generator = generator

    async def rewrite(self, question: str, history: Sequence[Turn]) -> str:
        if not history:
            return question
        try:
            rewritten = clean_rewrite(await self.reply(question, history))
        except GeneratorUnavailableError:
            return carry_over(question, history)
        if not usable_rewrite(rewritten, question, history):
            return carry_over(question, history)
        return rewritten

    async def reply(self, question: str, history: Sequence[Turn]) -> str:
        """The model's reply to the rewrite prompt, as written."""
        messages = rewrite_messages(question, history[-LLM_REWRITE_TURNS:])
        tokens = self._generator.stream(messages, max_tokens=LLM_MAX_TOKENS, temperature=0.0)
        return "".join([piece async for piece in tokens])


class AutoRewriter:
    """The LLM when the served model is capable, the keyword carry-over for small ones."""

    def __init__(self, generator: Generator) -> None:
        self._generator = generator
        self._llm = LlmRewriter(generator)
        self._keywords = KeywordRewriter()

    async def rewrite(self, question: str, history: Sequence[Turn]) -> str:
        if not history:
            return question
        try:
            model = (await self._generator.info()).model
        except GeneratorUnavailableError:
            return await self._keywords.rewrite(question, history)
        chosen = self._keywords if model in SMALL_MODELS else self._llm
        return await chosen.rewrite(question, history)


def rewrite_messages(question: str, history: Sequence[Turn]) -> list[Message]:
    lines = ["Conversation:"]
    for turn in history:
        answer = without_markers(turn.answer)[:LLM_MAX_ANSWER_CHARS]
        lines += [f"Question: {turn.standalone_question.strip()}", f"Answer: {answer}"]
    lines += ["", f"Last question: {question.strip()}"]
    return [
        {"role": "system", "content": REWRITE_PROMPT},
        {"role": "user", "content": EXAMPLE_CONVERSATION},
        {"role": "assistant", "content": EXAMPLE_REWRITE},
        {"role": "user", "content": "\n".join(lines)},
    ]


REPLY_LABEL = re.compile(r"^(?:rewritten question|question|last question)\s*:\s*", re.IGNORECASE)


def clean_rewrite(reply: str) -> str:
    """The first non-empty line, without a label or quotes the model may add."""
    line = next((line.strip() for line in reply.splitlines() if line.strip()), "")
    return REPLY_LABEL.sub("", line).strip().strip("\"'“”").strip()


def usable_rewrite(rewritten: str, question: str, history: Sequence[Turn]) -> bool:
    """A question-sized reply that is a question (small models tend to answer instead) and
    not merely an earlier question repeated."""
    if not 0 < len(rewritten) <= 3 * len(question) + 200:
        return False
    if question.rstrip().endswith("?") and not rewritten.endswith("?"):
        return False
    earlier = {turn.standalone_question.strip().lower() for turn in history}
    return rewritten.lower() not in earlier or rewritten.lower() == question.strip().lower()


def make_rewriter(settings: Settings, generator: Generator) -> QuestionRewriter:
    mode = settings.followup_rewrite
    if mode == "off":
        return AsAsked()
    if mode == "keywords":
        return KeywordRewriter()
    if mode == "llm":
        return LlmRewriter(generator)
    return AutoRewriter(generator)


def replayed(exchanges: Sequence[tuple[str, str]]) -> list[Turn]:
    """Turns for (question, answer) pairs a client sent back (OpenAI ``messages``): each
    question's standalone form rebuilt by the keyword carry-over, cheaply, in order."""
    turns: list[Turn] = []
    for question, answer in exchanges:
        turns.append(Turn(question, carry_over(question, turns), answer))
    return turns
