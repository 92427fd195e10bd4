"""Quote mode: answer with the retrieved sentences that best answer the question, no LLM.

Each sentence of the retrieved passages is scored against the question by embedding
similarity, the share of the question's content words it contains, and whether it holds
what the question asks for (a number for "how many", a date for "when", a name for
"who"). The best 1-3 are the answer, verbatim, each with its [n] citation and exact span:
grounded by construction, deterministic and fast. A quote is grounded, not necessarily an
answer: a confidence (the estimated probability that it holds the answer) decides whether
it is shown as one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from rag.embedding import Embedder
from rag.retrieval import Hit
from rag.verification import (
    Claim,
    Highlight,
    Support,
    content_words,
    is_echo,
    sentence_spans,
)

DENSE_WEIGHT = 0.5
OVERLAP_WEIGHT = 0.35
TYPE_WEIGHT = 0.15
MAX_QUOTES = 3
# A further quote must score nearly as well as the best one; a weak second quote only
# dilutes the answer.
FOLLOW_UP_MARGIN = 0.05
MAX_QUOTE_CHARS = 600  # a "sentence" longer than this is a table or a run-on: skip it
MIN_QUOTE_WORDS = 3  # content words, numbers aside

# How likely a quoted answer holds the answer: a logistic model of the best sentence,
# fitted on the questions of half of COVID-QA's articles and checked on the other half
# (benchmarks/quote_confidence.py; docs/benchmarks/quote-confidence.md). The margin over
# the next sentence weighs most: an answer stands out, an on-topic sentence has rivals.
CONFIDENCE_WEIGHTS = {
    "dense": 0.289,
    "overlap": 2.132,
    "typed": -1.508,
    "open_question": -2.563,
    "new_words": 0.920,
    "margin": 9.075,
}
CONFIDENCE_BIAS = -1.648
NO_RIVAL_MARGIN = 0.3  # the margin when the best sentence is the only candidate

_NUMBER = re.compile(r"\d")
_DATE = re.compile(
    r"\b(1[89]\d\d|20\d\d)\b|\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b",
    re.IGNORECASE,
)
_NAME = re.compile(r"(?<=\S )[A-Z][a-z]+|[A-Z]{2,}")


class Expected(StrEnum):
    NUMBER = "number"
    DATE = "date"
    NAME = "name"
    ANY = "any"


_CUES: list[tuple[re.Pattern[str], Expected]] = [
    (
        re.compile(
            r"\bhow (many|much|long|old|often|large|big|high|far)\b|\b(what|which) "
            r"(percentage|proportion|number|rate|amount|fraction)\b",
            re.IGNORECASE,
        ),
        Expected.NUMBER,
    ),
    (re.compile(r"\bwhen\b|\bwhat (year|date|month|day)\b", re.IGNORECASE), Expected.DATE),
    (re.compile(r"\bwho(m|se)?\b", re.IGNORECASE), Expected.NAME),
]


def expected_answer(question: str) -> Expected:
    """What kind of thing the question asks for, from its wording."""
    for pattern, expected in _CUES:
        if pattern.search(question):
            return expected
    return Expected.ANY


_YES_NO = re.compile(
    r"^\W*(is|are|was|were|do|does|did|can|could|will|would|should|has|have|had|may|must)\b",
    re.IGNORECASE,
)


def is_yes_no(question: str) -> bool:
    """The question asks whether its claim holds ("Are documents stored on the server?")."""
    return bool(_YES_NO.match(question))


def holds_expected(sentence: str, expected: Expected) -> bool:
    if expected is Expected.NUMBER:
        return bool(_NUMBER.search(sentence))
    if expected is Expected.DATE:
        return bool(_DATE.search(sentence))
    if expected is Expected.NAME:
        return bool(_NAME.search(sentence))
    return True


@dataclass(frozen=True, slots=True)
class Quote:
    n: int  # the passage, numbered from 1
    start: int  # span within the passage text
    end: int
    text: str
    score: float  # the ranking score against the question
    confidence: float = 0.0  # of the answer it belongs to (quote_confidence)
    similarity: float = 0.0  # embedding cosine to the question, one term of the score

    def cited(self) -> str:
        return f"{' '.join(self.text.split())} [{self.n}]"

    def as_claim(self) -> Claim:
        highlight = Highlight(self.n, self.start, self.end)
        score = round(self.confidence, 3)
        return Claim(self.cited(), [self.n], Support.SUPPORTED, score, highlight)


class QuoteExtractor:
    def __init__(self, embedder: Embedder, *, min_confidence: float = 0.0) -> None:
        self._embedder = embedder
        self._min_confidence = min_confidence

    def quotes(self, question: str, sources: Sequence[Hit]) -> list[Quote]:
        """The best 1-3 sentences of ``sources`` for ``question``, best first; [] when the
        answer's confidence is below ``min_confidence`` (likelier on topic than an answer)."""
        return self.confident(self.closest(question, sources))

    def confident(self, closest: Sequence[Quote]) -> list[Quote]:
        """``closest`` (the closest sentences) when confident enough to be the answer, else []."""
        if not closest or closest[0].confidence < self._min_confidence:
            return []
        return list(closest)

    def closest(self, question: str, sources: Sequence[Hit]) -> list[Quote]:
        """The best 1-3 sentences of ``sources`` for ``question`` whatever their confidence:
        evidence to read, not necessarily an answer."""
        scored = self.scored(question, sources)
        if not scored:
            return []
        confidence = quote_confidence(question, scored)
        return [replace(quote, confidence=confidence) for quote in best_quotes(scored)]

    def scored(self, question: str, sources: Sequence[Hit]) -> list[Quote]:
        """Every candidate sentence of ``sources`` with its score, best first."""
        candidates = [
            (n, start, end, hit.chunk.text[start:end])
            for n, hit in enumerate(sources, start=1)
            for start, end in sentence_spans(hit.chunk.text)
        ]
        # A yes/no question's answer may state or negate its claim in its own words ("The
        # uploaded documents are not stored on the server"): no echo then, but a candidate.
        echoed = "" if is_yes_no(question) else question
        candidates = [
            c
            for c in candidates
            if len(c[3]) <= MAX_QUOTE_CHARS and _has_words(c[3]) and not is_echo(c[3], echoed)
        ]
        if not candidates:
            return []
        vectors = self._embedder.embed([question] + [c[3] for c in candidates])
        asked = content_words(question)
        expected = expected_answer(question)
        scored = []
        for (n, start, end, text), vector in zip(candidates, vectors[1:], strict=True):
            overlap = len(asked & content_words(text)) / len(asked) if asked else 0.0
            similarity = float(vector @ vectors[0])
            score = (
                DENSE_WEIGHT * similarity
                + OVERLAP_WEIGHT * overlap
                + TYPE_WEIGHT * holds_expected(text, expected)
            )
            scored.append(Quote(n, start, end, text, score, similarity=similarity))
        scored.sort(key=lambda q: -q.score)
        return scored


def confidence_features(question: str, scored: Sequence[Quote]) -> dict[str, float]:
    """What the confidence reads from the best sentence of ``scored`` (best first)."""
    best = scored[0]
    rival = next((q for q in scored[1:] if q.text != best.text), None)
    asked, said = content_words(question), content_words(best.text)
    expected = expected_answer(question)
    overlap = len(asked & said) / len(asked) if asked else 0.0
    typed = float(holds_expected(best.text, expected))
    return {
        "dense": best.similarity,
        "overlap": overlap,
        "typed": typed if expected is not Expected.ANY else 0.0,
        "open_question": float(expected is Expected.ANY),
        "new_words": math.log1p(len(said - asked)),
        "margin": best.score - rival.score if rival else NO_RIVAL_MARGIN,
    }


def quote_confidence(question: str, scored: Sequence[Quote]) -> float:
    """Estimated probability that quoting the best of ``scored`` answers ``question``."""
    features = confidence_features(question, scored)
    logit = CONFIDENCE_BIAS + sum(CONFIDENCE_WEIGHTS[k] * v for k, v in features.items())
    return 1 / (1 + math.exp(-logit))


def best_quotes(scored: Sequence[Quote]) -> list[Quote]:
    """Up to MAX_QUOTES distinct sentences within FOLLOW_UP_MARGIN of the best."""
    chosen: list[Quote] = []
    seen: set[str] = set()
    for quote in scored:
        if len(chosen) == MAX_QUOTES or quote.score < scored[0].score - FOLLOW_UP_MARGIN:
            break
        if quote.text not in seen:  # overlapping chunks repeat sentences
            chosen.append(quote)
            seen.add(quote.text)
    return chosen


def _has_words(sentence: str) -> bool:
    """Enough words to be a statement: table rows and page furniture are not quotes."""
    return sum(1 for w in content_words(sentence) if not w[0].isdigit()) >= MIN_QUOTE_WORDS


def quoted_answer(quotes: Sequence[Quote]) -> str:
    return " ".join(quote.cited() for quote in quotes)
