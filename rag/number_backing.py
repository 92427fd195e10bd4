"""What backs a number of a claim: where it stands or how it follows (rag/number_checks.py
finds them), kept with the claim for the reader to see."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from rag.numbers import Operand


class Backing(StrEnum):
    STANDS = "stands"  # written in the passage, up to formatting and scale
    FOLLOWS = "follows"  # one step of arithmetic from numbers that stand
    UNBACKED = "unbacked"


@dataclass(frozen=True, slots=True)
class Derivation:
    operation: str  # difference, percent change, ratio, share, sum, or a measure's name
    operands: tuple[Operand, ...]
    result: float
    formula: str = ""  # how the operands give the result, when not one operation
    words: frozenset[str] = frozenset()  # the words it backs ("quick ratio", "improved")
    years: tuple[float, ...] = ()  # the years it is of (a change: the later first)

    def describe(self) -> str:
        if self.formula:
            return f"{self.formula} = {self.result:.4g}"
        names = [_name(o) for o in self.operands]
        symbol = {"difference": " - ", "ratio": " / ", "share": " / ", "sum": " + "}
        if self.operation == "percent change":
            return f"({names[0]} - {names[1]}) / {names[1]} = {self.result:.4g}"
        return f"{symbol[self.operation].join(names)} = {self.result:.4g}"


def _name(o: Operand) -> str:
    return f"{o.text.strip()} ({o.label})" if o.label else o.text.strip()


@dataclass(frozen=True, slots=True)
class NumberCheck:
    text: str  # the number as the claim writes it
    start: int  # span within the claim
    end: int
    backing: Backing
    source: Operand | None = None  # where it stands
    derivation: Derivation | None = None  # how it follows
    year: bool = False
    # It follows from a statement's tables, or stands in a row of one the question names:
    # the figure is what the sentence says, not a number that happens to be on the page.
    on_topic: bool = False
    named_row: bool = False  # it stands in a row of two or more cells the question names

    @property
    def dated(self) -> tuple[float, ...]:
        """The years of the columns it stands in or is computed from, where known."""
        if self.source is not None:
            return () if self.source.year is None else (self.source.year,)
        return self.derivation.years if self.derivation else ()

    @property
    def passages(self) -> tuple[int, ...]:
        """The passages it stands in or is computed from (their words back the claim's
        words too: a ratio's numerator and denominator may be on two pages)."""
        if self.source is not None:
            return (self.source.n,)
        return tuple(o.n for o in self.derivation.operands) if self.derivation else ()
