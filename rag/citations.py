"""[n] markers in an answer -> the passages they point to.

Import-light on purpose (no numpy, torch or FastAPI): the web UI reads markers with these
same rules, so a badge shows exactly the passages the server cites.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rag.retrieval import Hit

# [1], [2, 3], [4-5] (ranges are expanded)
MAX_RANGE = 20  # a longer "range" is taken as its two end points
CITATION_PATTERN = re.compile(r"\[(\d+(?:\s*[,\-–]\s*\d+)*)\]")


@dataclass(frozen=True, slots=True)
class Citation:
    n: int
    hit: Hit


def marker_numbers(marker: re.Match[str]) -> list[int]:
    """The passage numbers of one CITATION_PATTERN match: "[1, 3-5]" -> [1, 3, 4, 5]."""
    numbers: list[int] = []
    for part in re.split(r"\s*,\s*", marker.group(1)):
        bounds = [int(x) for x in re.split(r"\s*[\-–]\s*", part)]
        is_range = len(bounds) == 2 and 0 <= bounds[1] - bounds[0] <= MAX_RANGE
        numbers.extend(range(bounds[0], bounds[1] + 1) if is_range else bounds)
    return numbers


def cited_numbers(text: str) -> list[int]:
    """Every passage number cited in ``text``, in order of first appearance."""
    numbers: list[int] = []
    for marker in CITATION_PATTERN.finditer(text):
        for n in marker_numbers(marker):
            if n not in numbers:
                numbers.append(n)
    return numbers


def parse_citations(answer: str, passages: Sequence[Hit]) -> tuple[list[Citation], list[int]]:
    """Return the valid citations and the numbers that point to no passage."""
    valid: list[Citation] = []
    invalid: list[int] = []
    for n in cited_numbers(answer):
        if 1 <= n <= len(passages):
            valid.append(Citation(n=n, hit=passages[n - 1]))
        else:
            invalid.append(n)
    return valid, invalid
