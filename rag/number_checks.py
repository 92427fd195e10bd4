"""Numbers checked by value, not matched as words.

A number of a claim is backed when it stands in a passage up to formatting and scale
("$1,577.00" is the cell "1,577" under "(Millions)"; "$1.6 billion" is that cell within
the claim's rounding; "1.9%" is "0.019"), or when it follows by one step an analyst
takes (difference, percent change, ratio, share, sum of a column's parts) from numbers
that stand: the claim's own, the cells of one table row, or a part and its total in one
column; or when it is a measure the claim or its question names, computed by its
textbook formula (rag/measures.py), or that measure's change between two years.
Operands are held to those few so that a wrong number rarely follows from a table's
hundreds of cells by chance. Each check keeps where the number stands or how it follows,
for the reader to see.

What the claim says around a figure must agree with it: a figure written with its year
("36.8% in FY2021") stands in or is computed from that year's column; a change said to
be a rise or a fall ("declined", "improved", "from X to Y") has that sign; a share is a
part over its whole, never above it (so a ratio turned around does not pass).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from rag.claim_figures import direction, names_period, said_years, stated_changes
from rag.glossary import measure_terms
from rag.lemmas import FALL_WORDS, OPERATION_WORDS, RISE_WORDS, topic_lemmas
from rag.measures import Value, measure_words, named_measures, values
from rag.number_backing import Backing as Backing
from rag.number_backing import Derivation as Derivation
from rag.number_backing import NumberCheck as NumberCheck
from rag.numbers import (
    Cell,
    Operand,
    PassageNumbers,
    Quantity,
    agrees,
    cell_value,
    claimed_quantities,
    is_count,
    quantities,
    stated_scale,
)

_TOTAL = re.compile(r"(?i)\btotal\b|\brevenues?\b|\bnet sales\b|\bsales\b")
# Table cells give hundreds of differences and ratios: a figure with fewer digits than
# this would follow from some of them by chance (the claim's own figures are few).
MIN_DERIVED_DIGITS = 3
_CHANGES = ("difference", "percent change")
# Names of statements in a question ("shown in the statement of income"): no line item.
_STATEMENTS = re.compile(
    r"(?i)\b(?:statements? of (?:income|operations|earnings|cash flows?|financial position)"
    r"|(?:income|cash flows?) statements?|balance sheets?|p&l)\b"
)


@dataclass(frozen=True, slots=True)
class _Said:
    """What the claim and its question say around the claim's figures."""

    topic: frozenset[str]  # lemmas naming rows
    asked: frozenset[str]  # lemmas of the question (of the claim when there is none)
    direction: int  # +1 a rise, -1 a fall, 0 neither or both
    years: dict[int, float]  # figure (index) -> the year the claim says it of
    measures: list[Value]  # the named measures' values
    text: str = ""  # the claim and its question


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
    # Its years and thresholds (a percent, an amount; a bare count may be part of a name).
    asked = [a for a in quantities(question) if a.year or not is_count(a)]
    claimed = claimed_quantities(claim, asked_scale)
    named_years = [q.value for q in claimed if q.year]
    measured = [v for m in named_measures(f"{claim}\n{question}") for v in values(m, passages)]
    said = _Said(
        text=f"{claim}\n{question}",
        topic=topic_lemmas(_STATEMENTS.sub(" ", f"{claim}\n{question}")),
        asked=_asked(question or claim),
        direction=direction(claim),
        years=said_years(claim, claimed),
        measures=sorted(measured, key=lambda v: v.year not in named_years),  # its years first
    )
    by_n = {p.n: p for p in passages}
    checks: list[NumberCheck | None] = []
    standing: list[tuple[Operand, float | None]] = []
    for i, q in enumerate(claimed):
        year = said.years.get(i)
        tries: list[float | None] = [year] if year is not None else [*named_years, None]
        source = next((s for y in tries for p in passages if (s := p.standing(q, y))), None)
        if source is None and any(a.year == q.year and agrees(q, a.value) for a in asked):
            checks.append(NumberCheck(q.text, q.start, q.end, Backing.STANDS, year=q.year))
            continue  # the year asked about, or a threshold the question states ("20%")
        if source is not None:
            named = not q.year and _named_row(by_n[source.n], source, said.asked)
            on_topic = named and by_n[source.n].tabular
            checks.append(
                NumberCheck(
                    q.text, q.start, q.end, Backing.STANDS, source, None, q.year, on_topic, named
                )
            )
            if not q.year:
                standing.append((source, year))
        else:
            checks.append(None)
    standing += _context_figures(context, question, passages) if context else []
    result = []
    for i, (q, check) in enumerate(zip(claimed, checks, strict=True)):
        if check is None:
            derivation = derive(q, said, i, standing, passages)
            backing = Backing.FOLLOWS if derivation else Backing.UNBACKED
            # Computed from a statement's tables, not from figures of running text.
            ops = derivation.operands if derivation else ()
            tables = bool(ops) and all(by_n[o.n].tabular for o in ops)
            check = NumberCheck(q.text, q.start, q.end, backing, None, derivation, q.year, tables)
        result.append(check)
    return _of_years_said(claimed, _from_to(claim, claimed, result, said.direction))


def _of_years_said(claimed: Sequence[Quantity], checks: list[NumberCheck]) -> list[NumberCheck]:
    """A claim that names years speaks of them: a figure read from or computed over a
    column of another year is not backed ("from 0.67 to 0.69 between FY2022 and FY2022"
    when 0.69 is FY2023's)."""
    years = {q.value for q in claimed if q.year}
    if not years:
        return checks
    # One year named: a change is said of its later year ("grew 30.8% in 2017"); two: of
    # both ("between FY2022 and FY2023").
    return [
        replace(c, backing=Backing.UNBACKED, source=None, derivation=None, on_topic=False)
        if c.backing is not Backing.UNBACKED
        and not set(c.dated if len(years) > 1 else c.dated[:1]) <= years
        else c
        for c in checks
    ]


def _from_to(
    claim: str, claimed: Sequence[Quantity], checks: list[NumberCheck], said: int
) -> list[NumberCheck]:
    """A claim that something rose "from X to Y" with Y below X (or fell with Y above
    it): Y is not backed."""
    if not said:
        return checks
    index = {id(q): i for i, q in enumerate(claimed)}
    for a, b in stated_changes(claim, [q for q in claimed if not q.year]):
        if a.value != b.value and (b.value > a.value) != (said > 0):
            j = index[id(b)]
            checks[j] = replace(
                checks[j], backing=Backing.UNBACKED, derivation=None, on_topic=False
            )
    return checks


def _asked(question: str) -> frozenset[str]:
    """Lemmas of what the question asks about, with the line items of the measures it
    names ("capital expenditure": "purchases of property, plant and equipment")."""
    items = " ".join(measure_terms(question))
    return topic_lemmas(_STATEMENTS.sub(" ", f"{question}\n{items}"))


def _named_row(p: PassageNumbers, source: Operand, asked: frozenset[str]) -> bool:
    """The cell is in a table row (two or more cells) whose name the question uses."""
    cell = next((c for c in p.table_cells() if c.quantity.start == source.start), None)
    return cell is not None and bool(topic_lemmas(cell.label) & asked)


def _context_figures(
    context: str, question: str, passages: Sequence[PassageNumbers]
) -> list[tuple[Operand, float | None]]:
    """The answer's figures, as written, that stand or are a measure it names, with the
    year each is said of: an analyst's "a drop of 2.2 points" is taken from the two
    margins written before it (36.8% - 34.6%), not from the unrounded ones."""
    written = quantities(context)
    years = said_years(context, written)
    measured = [v for m in named_measures(f"{context}\n{question}") for v in values(m, passages)]
    found = []
    for i, q in enumerate(written):
        year = years.get(i)
        source = (
            None
            if q.year
            else next((s for p in passages if (s := p.standing(q, year)) is not None), None)
        )
        value = next(
            (v for v in measured if (year is None or v.year == year) and agrees(q, v.value)),
            None,
        )
        if source is None and value is not None and not q.year:
            first = value.operands[0]
            source = Operand(first.n, first.start, first.end, q.text, q.value, value.measure.name)
        if source is not None:
            found.append((source, year))
    return found


def _significant_digits(q: Quantity) -> int:
    return len(re.sub(r"\D", "", q.text).lstrip("0"))


def derive(
    claimed: Quantity,
    said: _Said,
    index: int,
    standing: Sequence[tuple[Operand, float | None]],
    passages: Sequence[PassageNumbers],
) -> Derivation | None:
    """One step of arithmetic that gives the claimed number: a named measure or its
    change, or a step from the claim's own numbers that stand, or from table cells whose
    rows the claim or its question name (``said.topic``: their lemmas): one row's
    neighbouring cells, two rows of one column (a part over its total, one measure over
    another) or a run of a column's consecutive cells summed."""
    if claimed.year or is_count(claimed):
        return None  # a count ("16 days", "4 frames") is stated, not computed
    year = said.years.get(index)
    found = _measured(claimed, said, year)
    if found:
        return found
    for (a, ya), (b, yb) in itertools.permutations(standing, 2):
        sign = _sign(ya, yb)
        if sign < 0 or (a.n, a.start) == (b.n, b.start):
            continue  # a change runs from the earlier year; a figure is no change of itself
        found = _pair(claimed, a, b, _CHANGES, said.direction * sign)
        if found:
            return replace(found, years=())  # of the years the claim gives them
    if year is not None and any(v.year == year for v in said.measures):
        return None  # said of a year the named measure is computed for: it is that measure
    return _from_cells(claimed, said, year, passages)


def _from_cells(
    claimed: Quantity, said: _Said, year: float | None, passages: Sequence[PassageNumbers]
) -> Derivation | None:
    """One step from table cells whose rows the claim or question names."""
    if _significant_digits(claimed) < MIN_DERIVED_DIGITS:
        return None  # "1.9%" lies within rounding of some ratio of any table's cells

    def named(cell: Cell) -> bool:
        return bool(topic_lemmas(cell.label) & said.topic)

    for p in passages:
        for x, y in p.row_pairs():
            sign = _sign(x.year, y.year)
            if named(x) and sign >= 0:  # a change is over the earlier year, when dated
                # No percent change across a sign change ("273" over "(18,469)").
                flips = (x.values[-1] < 0) != (y.values[-1] < 0)
                steps = ("difference",) if flips else _CHANGES
                found = _pair(claimed, _op(p, x), _op(p, y), steps, said.direction * sign)
                if found:
                    return found
        for part, whole in p.column_pairs():
            if year is not None and part.year is not None and part.year != year:
                continue
            if named(part) and (_TOTAL.search(whole.label) or named(whole)):
                found = _pair(claimed, _op(p, part), _op(p, whole), ("share",), 0)
                if found:
                    return found
        for run in p.column_sums():
            if all(named(c) for c in run):  # the parts the claim or question names
                operands = tuple(_op(p, c) for c in run)
                result = sum(c.values[-1] for c in run)  # parts add with their printed signs
                if not claimed.percent and (agrees(claimed, result) or agrees(claimed, -result)):
                    years = tuple({o.year for o in operands if o.year is not None})
                    return Derivation("sum", operands, result, years=years)
    return None


def _op(p: PassageNumbers, cell: Cell) -> Operand:
    return p.operand(cell, cell_value(cell))


def _sign(newer: float | None, older: float | None) -> int:
    """+1 when the first year is the later, -1 the earlier, 0 when either is unknown."""
    if newer is None or older is None or newer == older:
        return 0
    return 1 if newer > older else -1


def _measured(claimed: Quantity, said: _Said, year: float | None) -> Derivation | None:
    """The claimed figure as a named measure in a year, or as its change between two
    years (in points, or in percent of the earlier), of the sign the claim says."""
    for value in said.measures:
        if (year is None or value.year == year) and agrees(claimed, value.value):
            words = measure_words(value.measure, said.text) | _RATIO_WORDS
            return Derivation(
                value.measure.name,
                value.operands,
                value.value,
                value.formula,
                words,
                (value.year,),
            )
    for new, old in _year_pairs(said.measures):
        if year is not None and new.year != year:
            continue
        changes = [("difference", new.value - old.value, "({0}) - ({1})")]
        if claimed.percent and old.value:
            changes.append(("percent change", (new.value - old.value) / abs(old.value), ""))
        for operation, result, shape in changes:
            if said.direction and (claimed.value < 0 or (result > 0) != (said.direction > 0)):
                continue  # a rise or fall is said by its size: "declined by -0.8%" is not
            if agrees(claimed, result) or (claimed.value > 0 and agrees(claimed, abs(result))):
                formula = (shape or "(({0}) - ({1})) / ({1})").format(new.formula, old.formula)
                words = measure_words(new.measure, said.text) | _RATIO_WORDS | _CHANGE_WORDS
                return Derivation(
                    operation,
                    new.operands + old.operands,
                    result,
                    formula,
                    words,
                    (new.year, old.year),
                )
    return None


_CHANGE_WORDS = RISE_WORDS | FALL_WORDS | frozenset({"change", "point", "points"})
# A measure's words, besides its name: those of a ratio ("0.69 times", "net income as the
# denominator").
_RATIO_WORDS = frozenset({"ratio", "times", "numerator", "denominator", "using"})
_COMPARE_WORDS = frozenset({"compare", "compared", "versus", "against"})


def backed_words(claim: str, checks: Sequence[NumberCheck]) -> frozenset[str]:
    """Words of the claim its figures back: the operation or measure a figure follows
    by ("grew" for a percent change, "quick ratio"), and the direction of a change it
    states from one backed figure to another ("improved from 0.67 to 0.69")."""
    words: set[str] = set()
    for check in checks:
        if check.derivation is not None:
            words |= OPERATION_WORDS.get(check.derivation.operation, frozenset())
            words |= check.derivation.words
    for a, b in stated_changes(claim, [c for c in checks if not c.year]):
        if Backing.UNBACKED not in (a.backing, b.backing):
            words |= _CHANGE_WORDS  # its sign was checked (_from_to)
    if sum(not c.year and c.backing is not Backing.UNBACKED for c in checks) >= 2:
        words |= _COMPARE_WORDS  # "0.62%, compared to -14.76%": two backed figures side by side
    if names_period(claim) and all(c.backing is not Backing.UNBACKED for c in checks if c.year):
        words.add("between")  # "between FY2022 and FY2023": the period, its years backed
    return frozenset(words)


def _year_pairs(found: Sequence[Value]) -> Iterator[tuple[Value, Value]]:
    """Two values of one measure (one choice of rows), the later year first."""
    for new, old in itertools.permutations(found, 2):
        if new.measure is old.measure and new.rows == old.rows and new.year > old.year:
            yield new, old


def _pair(
    claimed: Quantity, a: Operand, b: Operand, operations: Sequence[str], said: int
) -> Derivation | None:
    """``a`` op ``b`` gives the claimed number. ``said`` is the sign the claim gives a
    ``b`` -> ``a`` change (0: unknown). A change may be written as its size ("fell 2.2
    points"); a share is a part of its whole, at most all of it."""
    for operation in operations:
        result = _apply(operation, a.value, b.value)
        if result is None:
            continue
        if operation in ("percent change", "share") and not claimed.percent:
            continue  # a change or a share is said in percent
        if operation == "share" and abs(result) > 1:
            continue  # a whole over its part: a ratio turned around
        if said and operation in _CHANGES and (claimed.value < 0 or (result > 0) != (said > 0)):
            continue  # "declined" by what rose, or by a negative figure
        if agrees(claimed, result) or (operation != "ratio" and agrees(claimed, abs(result))):
            # A change is of its two years, the later first; a share of its part's year.
            dated = [o.year for o in (a, b) if o.year is not None]
            years = tuple(sorted(dated, reverse=True)) if operation in _CHANGES else dated[:1]
            return Derivation(operation, (a, b), result, years=tuple(years))
    return None


def _apply(operation: str, a: float, b: float) -> float | None:
    if operation == "difference":
        return a - b
    if b == 0:
        return None
    if operation == "percent change":
        return (a - b) / abs(b)
    return a / b  # ratio and share
