"""Dictionary forms of English words, so that "grew" meets "grow" and "analyses" meets
"analysis" (simplemma's lookup table, no model)."""

from __future__ import annotations

import functools
import re

import simplemma
from bm25s.stopwords import STOPWORDS_EN

_WORD = re.compile(r"[A-Za-z][A-Za-z\-']+")
# Words every line item or question may hold: they name no quantity of their own.
_GENERIC = frozenset({"total", "net", "other", "less", "fy", "year", "years", "amount"})
_STOPWORDS = frozenset(STOPWORDS_EN) | _GENERIC
# Filings name one measure several ways; a line item "Net sales" is the revenue asked about.
_SAME_MEASURE = {"sale": "revenue", "turnover": "revenue", "earnings": "income", "margin": "profit"}


@functools.lru_cache(maxsize=65536)
def lemma(word: str) -> str:
    """The dictionary form of an English word, lower case."""
    return str(simplemma.lemmatize(word.lower(), lang="en")).lower()


def topic_lemmas(text: str) -> frozenset[str]:
    """Lemmas of the words of a text that name something (stopwords and words such as
    "total" left out)."""
    found = (lemma(w) for w in _WORD.findall(text) if w.lower() not in _STOPWORDS)
    return frozenset(_SAME_MEASURE.get(w, w) for w in found)
