"""BM25 over a session's passages (bm25s), for hybrid retrieval."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN

from core.settings import Settings

STOPWORDS = "en"
_STOPWORDS = frozenset(STOPWORDS_EN)
# A word, number or code with inner punctuation kept: "10-k", "fy2022", "1,577",
# "q2'2023", "pp&e", "u.s.".
_TERM = re.compile(r"[a-z0-9]+(?:[-./,'&][a-z0-9]+)*")
_PART = re.compile(r"[a-z0-9]+")
_RUN = re.compile(r"[a-z]+|[0-9]+")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")


def tokenize_words(texts: Sequence[str]) -> list[list[str]]:
    """bm25s' default: words of two or more characters, English stopwords removed."""
    tokens: list[list[str]] = bm25s.tokenize(
        list(texts), stopwords=STOPWORDS, return_ids=False, show_progress=False
    )
    return tokens


def tokenize_terms(texts: Sequence[str]) -> list[list[str]]:
    """Words plus the codes, periods and numbers of business documents, each searchable
    whole and by its parts: "FY2022" -> fy2022, fy, 2022; "10-K" -> 10-k, 10; "1,577" -> 1577.
    """
    return [_terms(text) for text in texts]


def _terms(text: str) -> list[str]:
    out: list[str] = []
    for match in _TERM.finditer(_THOUSANDS.sub("", text.lower())):
        term = match.group()
        if term not in _STOPWORDS and len(term) > 1:
            out.append(term)
        parts = _PART.findall(term)
        if len(parts) > 1:
            out.extend(p for p in parts if len(p) > 1 and p not in _STOPWORDS)
        for part in parts:
            runs = _RUN.findall(part)
            if len(runs) > 1:  # letters and digits together: fy2022, q2, 10k
                out.extend(r for r in runs if len(r) > 1 and r not in _STOPWORDS)
    return out


Analyzer = Callable[[Sequence[str]], list[list[str]]]
ANALYZERS: Mapping[str, Analyzer] = {"words": tokenize_words, "terms": tokenize_terms}
DEFAULT_ANALYZER = "terms"
# BM25's term-frequency saturation: the setting's default (measured there), for direct use.
DEFAULT_K1: float = Settings.model_fields["lexical_k1"].default


class LexicalIndex:
    """An immutable BM25 index of passages keyed by their vector ids.

    BM25's IDF depends on the whole corpus, so a change means a new index; building
    one is a sparse-matrix pass, milliseconds for thousands of passages.
    """

    def __init__(
        self,
        ids: Sequence[int],
        texts: Sequence[str],
        analyzer: str = DEFAULT_ANALYZER,
        k1: float = DEFAULT_K1,
    ) -> None:
        self._ids = np.asarray(ids, dtype=np.int64)
        self._tokenize = ANALYZERS[analyzer]
        self._bm25 = bm25s.BM25(k1=k1)
        self._bm25.index(self._tokenize(texts), show_progress=False)

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """Best (vector id, BM25 score) pairs; passages sharing no term are left out."""
        k = min(k, len(self._ids))
        tokens = self._tokenize([query])
        if k == 0 or not tokens[0]:
            return []
        rows, scores = self._bm25.retrieve(tokens, k=k, show_progress=False)
        return [
            (int(self._ids[row]), float(score))
            for row, score in zip(rows[0], scores[0], strict=True)
            if score > 0
        ]


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]], k: int = 60, weights: Sequence[float] | None = None
) -> list[int]:
    """Fuse ranked id lists: score(id) = sum of weight / (k + rank), best first
    (Cormack et al. 2009; equal weights unless given)."""
    scores: dict[int, float] = {}
    for number, ranking in enumerate(rankings):
        weight = 1.0 if weights is None else weights[number]
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores, key=lambda item: scores[item], reverse=True)
