"""A labelled claim set built from COVID-QA, to calibrate and measure the verifier.

Each COVID-QA question gives one passage (the article text around its answer, about
a retrieval chunk long) and several claims checked against it, each labelled
``supported`` (it says what the passage says and answers the question) or not:

- positive ``answer-sentence``: the context sentence that holds the answer span;
- positive ``answer-clause``: the comma/semicolon clause of it that holds the span;
- negative ``swapped-span``: that sentence with a number (else a name, else a content
  word) of the answer replaced by one of the same kind from the same article that the
  passage does not contain, not even as another form of the same word;
- negative ``other-article``: the sentence of a different article that shares the most
  content words with the question (same topic, not this passage);
- negative ``echoed-question``: the question itself, plain and as "Question: ...";
- negative ``fragment``: a content-free fragment such as "The virus's genome.";
- negative ``off-topic``: another sentence of the same passage that does not hold the
  answer (true, but it does not answer the question).

Articles are split in two halves with a fixed seed: thresholds and features are chosen
on ``calibration`` only; precision and recall are reported on ``held-out``.
Nothing is written to disk: the set is rebuilt (deterministically) on every run.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from benchmarks.common import COVIDQA
from rag.lemmas import lemma
from rag.verification import content_words, sentence_spans

SPLIT_SEED = 20260412
PASSAGE_CHARS = 800  # about one 192-token chunk
Split = Literal["calibration", "held-out"]
PARAGRAPH_BREAK = "\n\n"

_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?![\w])")
_NAME = re.compile(r"(?<=[a-z,;:(] )[A-Z][A-Za-z0-9\-]+")
_LONG_WORD = re.compile(r"\b[a-z]{7,}\b")
_CLAUSE_BREAK = re.compile(r"[,;:]\s+")


@dataclass(frozen=True, slots=True)
class LabelledClaim:
    question: str
    passage: str
    claim: str
    supported: bool
    kind: str
    article: int
    split: Split


@dataclass(frozen=True, slots=True)
class _Sentence:
    start: int
    end: int
    text: str


def build_claims(path: Path = COVIDQA) -> list[LabelledClaim]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    contexts = [PARAGRAPH_BREAK.join(p["context"] for p in entry["paragraphs"]) for entry in data]
    order = list(range(len(contexts)))
    random.Random(SPLIT_SEED).shuffle(order)
    split_of: dict[int, Split] = {
        a: ("calibration" if rank < len(order) // 2 else "held-out") for rank, a in enumerate(order)
    }
    sentences = [_sentences(text) for text in contexts]
    topic_index = _TopicIndex(sentences)
    rng = random.Random(SPLIT_SEED)
    claims: list[LabelledClaim] = []
    for article, entry in enumerate(data):
        context = contexts[article]
        offset = 0  # of the paragraph in the article's context
        for paragraph in entry["paragraphs"]:
            for qa in paragraph["qas"]:
                if not qa["answers"] or not qa["answers"][0]["text"].strip():
                    continue
                answer, at = _located(qa["answers"][0], context, offset)
                if at < 0:
                    continue
                claims += _claims_for(
                    qa["question"].strip(),
                    answer,
                    at,
                    context,
                    sentences[article],
                    article,
                    split_of[article],
                    topic_index,
                    rng,
                )
            offset += len(paragraph["context"]) + len(PARAGRAPH_BREAK)
    return claims


def _located(answer: dict[str, Any], context: str, offset: int) -> tuple[str, int]:
    """The answer text and where the annotator marked it in the article's context.

    A short answer often occurs more than once ("NLRP3 inflammasome"); the sentence that
    answers is the one the annotator marked, not the first occurrence. Falls back to the
    first occurrence when the recorded offset does not hold the text (-1: nowhere).
    """
    raw = answer["text"]
    text = raw.strip()
    start = offset + answer["answer_start"] + (len(raw) - len(raw.lstrip()))
    if context[start : start + len(text)] == text:
        return text, start
    return text, context.find(text)


def _claims_for(
    question: str,
    answer: str,
    at: int,
    context: str,
    sentences: list[_Sentence],
    article: int,
    split: Split,
    topics: _TopicIndex,
    rng: random.Random,
) -> list[LabelledClaim]:
    holding = [s for s in sentences if s.start < at + len(answer) and s.end > at]
    if len(holding) != 1:  # the answer runs over sentences: no single claim states it
        return []
    sentence = holding[0]
    passage_start = max(0, sentence.start - PASSAGE_CHARS // 2)
    passage_end = min(len(context), sentence.end + PASSAGE_CHARS // 2)
    inside = [s for s in sentences if s.start >= passage_start and s.end <= passage_end]
    if not inside:
        return []
    passage_start, passage_end = inside[0].start, inside[-1].end
    passage = context[passage_start:passage_end]

    def claim(text: str, supported: bool, kind: str) -> LabelledClaim:
        return LabelledClaim(question, passage, text, supported, kind, article, split)

    result = [claim(sentence.text, True, "answer-sentence")]
    clause = _answer_clause(sentence.text, answer)
    if clause is not None:
        result.append(claim(clause, True, "answer-clause"))
    swapped = _swap_span(sentence.text, answer, context, passage, rng)
    if swapped is not None:
        result.append(claim(swapped, False, "swapped-span"))
    other = topics.closest_elsewhere(question, article)
    if other is not None:
        result.append(claim(other, False, "other-article"))
    result.append(claim(question, False, "echoed-question"))
    result.append(claim(f"Question: {question}", False, "echoed-question"))
    fragment = _fragment(sentence.text)
    if fragment is not None:
        result.append(claim(fragment, False, "fragment"))
    others = [
        s.text
        for s in inside
        if s is not sentence and len(content_words(s.text)) >= 5 and answer not in s.text
    ]
    if others:
        result.append(claim(rng.choice(others), False, "off-topic"))
    return result


def _sentences(text: str) -> list[_Sentence]:
    """The article's sentences as the verifier splits passages (so "R0 to be 2.2" stays
    one sentence), those with at least three content words."""
    return [
        _Sentence(start, end, text[start:end])
        for start, end in sentence_spans(text)
        if len(content_words(text[start:end])) >= 3
    ]


def _answer_clause(sentence: str, answer: str) -> str | None:
    """The clause holding the whole answer, when it is a real part of the sentence."""
    at = sentence.find(answer)
    bounds = [0] + [m.end() for m in _CLAUSE_BREAK.finditer(sentence)] + [len(sentence)]
    for start, end in itertools.pairwise(bounds):
        if start <= at and at + len(answer) <= end:
            clause = sentence[start:end].strip(" ,;:")
            if clause != sentence.strip() and len(content_words(clause)) >= 4:
                return clause[0].upper() + clause[1:] + ("" if clause.endswith(".") else ".")
    return None


def _swap_span(
    sentence: str, answer: str, context: str, passage: str, rng: random.Random
) -> str | None:
    """The sentence with one number, name or word of the answer replaced by another of the
    same kind from the same article that the passage does not contain."""
    at = sentence.find(answer)
    for pattern in (_NUMBER, _NAME, _LONG_WORD):
        targets = [m for m in pattern.finditer(answer)]
        if not targets:
            continue
        target = rng.choice(targets)
        present = {m.group() for m in pattern.finditer(passage)}
        pool = sorted({m.group() for m in pattern.finditer(context)} - present)
        if not pool:
            continue
        replacement = rng.choice(pool)
        if lemma(replacement) in {lemma(w) for w in re.findall(r"[A-Za-z]+", passage)}:
            return None  # "families" in a passage with "family": the same word
        start, end = at + target.start(), at + target.end()
        return sentence[:start] + replacement + sentence[end:]
    return None


def _fragment(sentence: str) -> str | None:
    """A verbless, content-free fragment built from two words of the sentence."""
    words = [w for w in re.findall(r"[A-Za-z]{4,}", sentence) if content_words(w)]
    if len(words) < 2:
        return None
    return f"The {words[0].lower()}'s {words[-1].lower()}."


class _TopicIndex:
    """Sentences by content word, to find the one of another article nearest a question."""

    def __init__(self, sentences: list[list[_Sentence]]) -> None:
        self._texts: list[tuple[int, str]] = []
        self._by_word: dict[str, list[int]] = defaultdict(list)
        for article, found in enumerate(sentences):
            for sentence in found:
                sid = len(self._texts)
                self._texts.append((article, sentence.text))
                for word in content_words(sentence.text):
                    self._by_word[word].append(sid)
        self._document_frequency = {w: len(ids) for w, ids in self._by_word.items()}

    def closest_elsewhere(self, question: str, article: int) -> str | None:
        scores: dict[int, float] = defaultdict(float)
        for word in content_words(question):
            ids = self._by_word.get(word, [])
            if 0 < len(ids) < 2000:  # skip words nearly every sentence has
                weight = 1.0 / self._document_frequency[word] ** 0.5
                for sid in ids:
                    if self._texts[sid][0] != article:
                        scores[sid] += weight
        if not scores:
            return None
        return self._texts[max(scores, key=scores.__getitem__)][1]


def summary(claims: list[LabelledClaim]) -> Iterator[tuple[str, str, int]]:
    """(split, kind, count) for the report."""
    counts = Counter((c.split, c.kind) for c in claims)
    for (split, kind), count in sorted(counts.items()):
        yield split, kind, count
