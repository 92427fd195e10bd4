"""[n] markers in an answer -> the passages they point to."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.retrieval import Hit

# [1], [2, 3], [4-5] (ranges are expanded)
MAX_RANGE = 20  # a longer "range" is taken as its two end points
CITATION_PATTERN = re.compile(r"\[(\d+(?:\s*[,\-–]\s*\d+)*)\]")


@dataclass(frozen=True, slots=True)
class Citation:
    n: int
    hit: Hit


def cited_numbers(text: str) -> list[int]:
    """Every passage number cited in ``text``, in order of first appearance."""
    numbers: list[int] = []
    for match in CITATION_PATTERN.finditer(text):
        for part in re.split(r"\s*,\s*", match.group(1)):
            bounds = [int(x) for x in re.split(r"\s*[\-–]\s*", part)]
            is_range = len(bounds) == 2 and 0 <= bounds[1] - bounds[0] <= MAX_RANGE
            span = range(bounds[0], bounds[1] + 1) if is_range else bounds
            for n in span:
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
