"""What a claim says around its figures: the year each figure is said of, which way it
says a change went, and the figures it says a change runs between. rag.number_checks
holds the figures to it."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from typing import Protocol, TypeVar

from rag.lemmas import FALL_WORDS, RISE_WORDS, lemma
from rag.numbers import Quantity

# Between a figure and the year it is said of: "36.8% in FY 2021", "FY2022 was 0.62%".
_YEAR_AFTER = re.compile(
    r"(?i)[\s,(]*(?:(?:in|for|during|by|of|at|as|the|fiscal|year|ended)\s+)*(?:(?:FY|CY)\s?'?)?"
)
_YEAR_BEFORE = re.compile(r"(?i)[\s,:(]*(?:(?:was|were|is|of|at|totaled|reached)\s+)*")
_FROM = re.compile(r"(?i)\bfrom\s*$")
_TO = re.compile(r"(?i)\bto\s*$")
_PERIOD = re.compile(r"(?i)\bbetween\s+(?:(?:FY|CY)\s?'?)?\d")
_WORD = re.compile(r"[A-Za-z]+")


class Spanned(Protocol):
    @property
    def start(self) -> int: ...

    @property
    def end(self) -> int: ...


_Span = TypeVar("_Span", bound=Spanned)


def direction(text: str) -> int:
    """+1 when the text says something rose, -1 fell, 0 neither (or both)."""
    words = {w.lower() for w in _WORD.findall(text)}
    words |= {lemma(w) for w in words}
    rise, fall = bool(words & RISE_WORDS), bool(words & FALL_WORDS)
    return 0 if rise == fall else (1 if rise else -1)


def said_years(claim: str, claimed: Sequence[Quantity]) -> dict[int, float]:
    """The year each figure (by index) is said of: the year right after it ("36.8% in FY
    2021"), else the year right before it ("FY2022 was 0.62%")."""
    found = {}
    for i, q in enumerate(claimed):
        if q.year:
            continue
        after = next((y for y in claimed[i + 1 :] if y.year), None)
        if after is not None and _YEAR_AFTER.fullmatch(claim, q.end, after.start):
            found[i] = after.value
            continue
        before = next((y for y in reversed(claimed[:i]) if y.year), None)
        if before is not None and _YEAR_BEFORE.fullmatch(claim, before.end, q.start):
            found[i] = before.value
    return found


def stated_changes(claim: str, figures: Sequence[_Span]) -> Iterator[tuple[_Span, _Span]]:
    """Figures the claim says a change goes between: "from X ... to Y"."""
    for a, b in itertools.pairwise(figures):
        if _FROM.search(claim, 0, a.start) and _TO.search(claim, a.end, b.start):
            yield a, b


def names_period(claim: str) -> bool:
    """The claim names a period by its years: "between FY2022 and FY2023"."""
    return _PERIOD.search(claim) is not None
