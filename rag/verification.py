"""Does each sentence of an answer say what the passages it cites say?

A sentence is scored against each passage it cites by the best of its sentences
(windows), combining embedding similarity with lexical coverage of the sentence's
content words; numbers must appear verbatim. The best window is also the exact
highlight shown to the reader.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from bm25s.stopwords import STOPWORDS_EN

from rag.citations import CITATION_PATTERN, cited_numbers
from rag.embedding import Embedder
from rag.prompts import NOT_FOUND_ANSWER
from rag.retrieval import Hit

SUPPORTED_AT = 0.62
WEAK_AT = 0.45
SEMANTIC_WEIGHT = 0.5

_MARKERS_AFTER_STOP = re.compile(r"([.!?])((?:\s*\[[\d,\s\-–]+\])+)")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[^\s])|\n+")
_PASSAGE_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|$)")
_WORD = re.compile(r"[A-Za-z][A-Za-z\-']+|\d+(?:[.,]\d+)*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_STOPWORDS = frozenset(STOPWORDS_EN)


class Support(StrEnum):
    SUPPORTED = "supported"
    WEAK = "weak"
    UNSUPPORTED = "unsupported"


@dataclass(frozen=True, slots=True)
class Highlight:
    n: int  # the passage
    start: int  # span within the passage text
    end: int


@dataclass(frozen=True, slots=True)
class Claim:
    text: str  # the sentence as written, citation markers included
    citations: list[int]
    support: Support
    score: float
    highlight: Highlight | None  # best supporting span among the cited passages
    attributed: bool = False  # the model cited nothing; the citation was found by the verifier


def split_claims(answer: str) -> list[tuple[str, list[int]]]:
    """Sentences of the answer with the passage numbers each one cites."""
    # "... GPUs. [1]" cites for the sentence before it: move markers inside the stop.
    normalized = _MARKERS_AFTER_STOP.sub(r"\2\1", answer)
    claims = []
    for sentence in _SENTENCE_BREAK.split(normalized):
        sentence = sentence.strip(" -*•\t")
        if sentence and _WORD.search(CITATION_PATTERN.sub("", sentence)):
            claims.append((sentence, cited_numbers(sentence)))
    return claims


def content_words(text: str) -> set[str]:
    words = (w.lower() for w in _WORD.findall(text))
    return {_stem(w) for w in words if w not in _STOPWORDS}


def _stem(word: str) -> str:
    """Crude suffix stripping, so that "trained" meets "train" and "models" meets "model"."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word[0].isdigit():
            return word[: -len(suffix)]
    return word


def passage_windows(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of a passage, and of each pair of neighbours."""
    sentences = [
        (m.start(), m.end()) for m in _PASSAGE_SENTENCE.finditer(text) if m.group().strip()
    ]
    pairs = [(a[0], b[1]) for a, b in itertools.pairwise(sentences)]
    return [_trim(text, s, e) for s, e in sentences + pairs] or [(0, len(text))]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def lexical_support(claim: str, window: str) -> float:
    """Share of the claim's content words found in the window; 0 if a number is missing."""
    words = content_words(claim)
    if not words:
        return 0.0
    found = content_words(window)
    if any(_NUMBER.fullmatch(w) and w not in found for w in words):
        return 0.0
    return len(words & found) / len(words)


class CitationVerifier:
    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder

    def verify(self, answer: str, sources: Sequence[Hit]) -> list[Claim]:
        """Label each sentence supported, weak or unsupported by the passages it cites.

        A sentence that cites nothing is checked against every passage: if one supports
        it, that passage becomes its (attributed) citation; otherwise it is at most weak.
        """
        if answer.strip() == NOT_FOUND_ANSWER:
            return []
        claims = split_claims(answer)
        if not claims:
            return []
        windows = [passage_windows(hit.chunk.text) for hit in sources]
        window_texts = [
            hit.chunk.text[s:e]
            for hit, spans in zip(sources, windows, strict=True)
            for s, e in spans
        ]
        plain = [CITATION_PATTERN.sub("", text).strip() for text, _ in claims]
        vectors = self._embedder.embed(plain + window_texts)
        claim_vectors, window_vectors = vectors[: len(plain)], vectors[len(plain) :]
        offsets = np.cumsum([0] + [len(w) for w in windows])

        result = []
        for (text, cited), claim_text, claim_vector in zip(
            claims, plain, claim_vectors, strict=True
        ):
            valid = [n for n in cited if 1 <= n <= len(sources)]
            candidates = valid or list(range(1, len(sources) + 1))
            best_score, best = 0.0, None
            for n in candidates:
                first = offsets[n - 1]
                for j, (start, end) in enumerate(windows[n - 1]):
                    semantic = float(window_vectors[first + j] @ claim_vector)
                    lexical = lexical_support(claim_text, sources[n - 1].chunk.text[start:end])
                    score = SEMANTIC_WEIGHT * semantic + (1 - SEMANTIC_WEIGHT) * lexical
                    if score > best_score:
                        best_score, best = score, Highlight(n, start, end)
            support = label(best_score)
            score = round(best_score, 3)
            if not valid and support is Support.SUPPORTED and best is not None:
                result.append(Claim(text, [best.n], support, score, best, attributed=True))
                continue
            if not valid and support is Support.SUPPORTED:
                support = Support.WEAK
            result.append(Claim(text, cited, support, score, best))
        return result


def with_attributed_markers(answer: str, claims: Sequence[Claim]) -> str:
    """The answer with a [n] marker added to each sentence whose citation was attributed."""
    for claim in claims:
        if claim.attributed:
            body = claim.text.rstrip(".!?")
            marked = f"{body} {''.join(f'[{n}]' for n in claim.citations)}{claim.text[len(body) :]}"
            answer = answer.replace(claim.text, marked, 1)
    return answer


def label(score: float) -> Support:
    if score >= SUPPORTED_AT:
        return Support.SUPPORTED
    if score >= WEAK_AT:
        return Support.WEAK
    return Support.UNSUPPORTED
