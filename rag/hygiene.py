"""Guards against what small models do wrong: echo the prompt, loop, ramble.

The stop sequences end an answer where a small model starts writing the next prompt
turn; the repetition guard ends it when it starts saying the same thing again; the
length cap keeps a factual question's answer short, and the sentence budget ends it after
its first sentences, which carry what a small model gets right.
"""

from __future__ import annotations

import re

# Where SmolLM2-135M starts a new turn of the prompt it was shown.
STOP_SEQUENCES = ("Question:", "Passages:", "\n\n\n")
# Tokens for a factual question's answer: COVID-QA gold answers are at most ~90 model
# tokens at the 95th percentile (docs/benchmarks/answers.md), plus citation markers.
FACTUAL_ANSWER_TOKENS = 128
# Sentences of the small model's answer to a factual question: its first sentence holds what
# it gets right, the rest are rarely backed and cost seconds each on a CPU. On COVID-QA
# (60 questions) one sentence halved its tokens, cut a model-asked answer's time to x0.68,
# and left the replies holding the gold answer as they were (docs/benchmarks/latency.md).
SMALL_MODEL_FACTUAL_SENTENCES = 1
REPEATED_NGRAM_WORDS = 6
MIN_COUNTED_SENTENCE_WORDS = 3

_FACTUAL = re.compile(
    r"^\s*(what|which|who|whom|whose|when|where|how (many|much|long|old|often)|is|are|was|were|"
    r"does|do|did|can)\b",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# A finished sentence: its closing mark, citation markers after it ("... days. [1]"), and the
# space that shows the next sentence has begun (mid-stream, "3." may still become "3.5").
_FINISHED_SENTENCE = re.compile(r"[.!?](?:\s*\[\d+(?:\s*,\s*\d+)*\])*(?=\s)")
_WORD = re.compile(r"\w+")


def answer_token_cap(question: str, max_tokens: int) -> int:
    """A short cap for factual questions; the configured maximum otherwise."""
    if _FACTUAL.match(question):
        return min(max_tokens, FACTUAL_ANSWER_TOKENS)
    return max_tokens


def factual_sentence_budget(question: str, sentences: int) -> int:
    """``sentences`` for a factual question, 0 (no budget) otherwise or when 0."""
    return sentences if _FACTUAL.match(question) else 0


def budget_end(text: str, sentences: int) -> int | None:
    """Where the text's ``sentences``-th finished sentence ends, or None before it (or 0).
    A sentence of fewer than three words ("Yes.") leads into the answer and is not counted."""
    if sentences <= 0:
        return None
    counted, start = 0, 0
    for mark in _FINISHED_SENTENCE.finditer(text):
        if len(_WORD.findall(text[start : mark.start()])) >= MIN_COUNTED_SENTENCE_WORDS:
            counted += 1
            if counted == sentences:
                return mark.end()
        start = mark.end()
    return None


def repetition_start(text: str) -> int | None:
    """Where the text starts repeating itself (a sentence or a 6-word run seen before), or None."""
    seen_sentences: set[str] = set()
    position = 0
    for sentence in _SENTENCE_END.split(text):
        at = text.find(sentence, position)
        key = " ".join(_WORD.findall(sentence.lower()))
        if key.count(" ") >= 3 and key in seen_sentences:
            return at
        seen_sentences.add(key)
        position = at + len(sentence)
    words = list(_WORD.finditer(text))
    seen_runs: set[tuple[str, ...]] = set()
    for i in range(len(words) - REPEATED_NGRAM_WORDS + 1):
        run = tuple(w.group().lower() for w in words[i : i + REPEATED_NGRAM_WORDS])
        if run in seen_runs:
            return words[i].start()
        seen_runs.add(run)
    return None
