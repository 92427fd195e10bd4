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


# Words that frame a figure rather than state a fact: never the reason a claim is unbacked.
FRAME_WORDS = frozenset(
    "fy cy yoy usd bn mn approximately roughly around".split()  # noqa: SIM905
)
# Function words bm25s's 33-word list lacks ("were", "from", "has"): they state no fact a
# passage must hold. Negations, modals, quantifiers and words of order or place ("not",
# "may", "most", "before", "between") are not among them.
_FUNCTION = (
    "from about onto than so were been being am has have had having do does did doing "
    "those its them here which who whom whose what when where why how both each also "
    "just while once per via within"
)
FUNCTION_WORDS = frozenset(_FUNCTION.split())
# The words of an operation, by the operation a figure follows by (lemmas): "grew" is
# backed when the figure it states is a percent change of the passage's cells.
_CHANGE = "grow growth rise increase decline decrease fall drop change improve jump gain"
OPERATION_WORDS = {
    "difference": frozenset(f"{_CHANGE} difference".split()),
    "percent change": frozenset(f"{_CHANGE} rate".split()),
    "share": frozenset("share margin ratio rate proportion percent percentage".split()),  # noqa: SIM905
    "sum": frozenset("sum combine combined together".split()),  # noqa: SIM905
}
