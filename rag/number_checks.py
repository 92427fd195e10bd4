"""Numbers checked by value, not matched as words.

A number of a claim is backed when it stands in a passage up to formatting and scale
("$1,577.00" is the cell "1,577" under "(Millions)"; "$1.6 billion" is that cell within
the claim's rounding; "1.9%" is "0.019"), or when it follows by one step an analyst
takes (difference, percent change, ratio, share, sum of a column's parts) from numbers
that stand: the claim's own, the cells of one table row, or a part and its total in one
column. Operands are held to those few so that a wrong number rarely follows from a
table's hundreds of cells by chance. Each check keeps where the number stands or how it
follows, for the reader to see.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from rag.lemmas import topic_lemmas
from rag.numbers import (
    Cell,
    Operand,
    PassageNumbers,
    Quantity,
    agrees,
    cell_value,
    is_count,
    quantities,
    stated_scale,
)

_TOTAL = re.compile(r"(?i)\btotal\b|\brevenues?\b|\bnet sales\b|\bsales\b")
# Table cells give hundreds of differences and ratios: a figure with fewer digits than
# this would follow from some of them by chance (the claim's own figures are few).
MIN_DERIVED_DIGITS = 3


class Backing(StrEnum):
    STANDS = "stands"  # written in the passage, up to formatting and scale
    FOLLOWS = "follows"  # one step of arithmetic from numbers that stand
    UNBACKED = "unbacked"


@dataclass(frozen=True, slots=True)
class Derivation:
    operation: str  # difference, percent change, ratio, share, sum
    operands: tuple[Operand, ...]
    result: float

    def describe(self) -> str:
        names = [
            f"{o.text.strip()} ({o.label})" if o.label else o.text.strip() for o in self.operands
        ]
        symbol = {"difference": " - ", "ratio": " / ", "share": " / ", "sum": " + "}
        if self.operation == "percent change":
            return f"({names[0]} - {names[1]}) / {names[1]} = {self.result:.4g}"
        return f"{symbol[self.operation].join(names)} = {self.result:.4g}"


@dataclass(frozen=True, slots=True)
class NumberCheck:
    text: str  # the number as the claim writes it
    start: int  # span within the claim
    end: int
    backing: Backing
    source: Operand | None = None  # where it stands
    derivation: Derivation | None = None  # how it follows
    year: bool = False


def check_numbers(
    claim: str, passages: Sequence[PassageNumbers], question: str = "", context: str = ""
) -> list[NumberCheck]:
    """Each number of the claim, where it stands or how it follows, or unbacked.

    A year is backed by the passages or the question (which sets the period asked about);
    a plain number takes the scale the question states ("Answer in USD millions"). The
    figures of ``context`` (the rest of the answer) that stand are operands too: "...from
    36.8% to 34.6%. A drop of 2.2 points."
    """
    asked_scale = stated_scale(question)
    asked_years = {q.value for q in quantities(question) if q.year}
    claimed = [_with_scale(_as_size(q), asked_scale) for q in quantities(claim)]
    topic = topic_lemmas(f"{claim}\n{question}")
    checks: list[NumberCheck | None] = []
    standing: list[Operand] = []
    for q in claimed:
        source = next((s for p in passages if (s := p.standing(q)) is not None), None)
        if source is None and q.year and q.value in asked_years:
            checks.append(NumberCheck(q.text, q.start, q.end, Backing.STANDS, year=True))
            continue
        if source is not None:
            checks.append(
                NumberCheck(q.text, q.start, q.end, Backing.STANDS, source=source, year=q.year)
            )
            if not q.year:
                standing.append(source)
        else:
            checks.append(None)
    result = []
    for q, check in zip(claimed, checks, strict=True):
        if check is None:
            derivation = derive(q, standing + _standing(context, passages), passages, topic)
            backing = Backing.FOLLOWS if derivation else Backing.UNBACKED
            check = NumberCheck(q.text, q.start, q.end, backing, derivation=derivation, year=q.year)
        result.append(check)
    return result


def _as_size(q: Quantity) -> Quantity:
    """A claim's "(45)" is a number in parentheses, not an outflow: its size is meant."""
    if not q.accounting_negative:
        return q
    return replace(q, value=abs(q.value), accounting_negative=False)


def _standing(text: str, passages: Sequence[PassageNumbers]) -> list[Operand]:
    found = (next((s for p in passages if (s := p.standing(q))), None) for q in quantities(text))
    return [s for s in found if s is not None]


def _significant_digits(q: Quantity) -> int:
    return len(re.sub(r"\D", "", q.text).lstrip("0"))


def _with_scale(q: Quantity, scale: float | None) -> Quantity:
    if scale is None or q.scaled or q.percent or q.year:
        return q
    return replace(q, value=q.value * scale, unit=q.unit * scale, scale=scale, scaled=True)


def derive(
    claimed: Quantity,
    standing: Sequence[Operand],
    passages: Sequence[PassageNumbers],
    topic: frozenset[str] = frozenset(),
) -> Derivation | None:
    """One step of arithmetic that gives the claimed number, from the claim's own numbers
    that stand, or from table cells whose rows the claim or its question name (``topic``:
    their lemmas): one row's neighbouring cells, two rows of one column (a part over its
    total, one measure over another) or a run of a column's consecutive cells summed."""
    if claimed.year or is_count(claimed):
        return None  # a count ("16 days", "4 frames") is stated, not computed
    for a, b in itertools.permutations(standing, 2):
        found = _pair(claimed, a, b, ("difference", "percent change"))
        if found:
            return found
    if _significant_digits(claimed) < MIN_DERIVED_DIGITS:
        return None  # "1.9%" lies within rounding of some ratio of any table's cells

    def named(cell: Cell) -> bool:
        return bool(topic_lemmas(cell.label) & topic)

    for p in passages:
        for x, y in p.row_pairs():
            if named(x):
                found = _pair(
                    claimed,
                    p.operand(x, cell_value(x)),
                    p.operand(y, cell_value(y)),
                    ("difference", "percent change"),
                )
                if found:
                    return found
        for part, whole in p.column_pairs():
            if named(part) and (_TOTAL.search(whole.label) or named(whole)):
                found = _pair(
                    claimed,
                    p.operand(part, cell_value(part)),
                    p.operand(whole, cell_value(whole)),
                    ("share",),
                )
                if found:
                    return found
        for run in p.column_sums():
            if any(named(c) for c in run):
                operands = tuple(p.operand(c, cell_value(c)) for c in run)
                result = sum(o.value for o in operands)
                if not claimed.percent and agrees(claimed, result):
                    return Derivation("sum", operands, result)
    return None


def _pair(
    claimed: Quantity, a: Operand, b: Operand, operations: Sequence[str]
) -> Derivation | None:
    for operation in operations:
        result = _apply(operation, a.value, b.value)
        if result is None:
            continue
        # A change may be written as a drop ("fell 2.2 points"): its size is what is said.
        if operation in ("percent change", "share") and not claimed.percent:
            continue  # a change or a share is said in percent
        if agrees(claimed, result) or (operation != "ratio" and agrees(claimed, abs(result))):
            return Derivation(operation, (a, b), result)
    return None


def _apply(operation: str, a: float, b: float) -> float | None:
    if operation == "difference":
        return a - b
    if b == 0:
        return None
    if operation == "percent change":
        return (a - b) / abs(b)
    return a / b  # ratio and share
