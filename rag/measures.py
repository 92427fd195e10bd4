"""Analyst measures a filing seldom prints, computed from the line items it does print.

A claim such as "the quick ratio improved from 0.67 to 0.69" or "gross margin fell 0.8%"
states a measure that no cell holds: it is the textbook formula over a statement's lines
(quick ratio = (total current assets - inventories) / total current liabilities). When a
claim or its question names a measure, its value is computed for each year the passages'
tables head a column with (operands of two pages joined by that year), and so is its
change from one year to another, in points and in percent. The formulas are the
definitions, written from them, not fitted to any benchmark.

The search is bounded: only the measures the claim or question names are computed, each
line item takes at most MAX_ROWS matching rows, or when none is printed at most MAX_PARTS
sums of the rows under a heading that names it (so at most 3 ** 3 = 27 combinations of a
three-item formula), and changes pair only the years found (a page holds two or three).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from rag.numbers import Cell, Operand, PassageNumbers, cell_value

_WORD = re.compile(r"[a-z]+")
MAX_ROWS = 2  # rows tried per line item (a page may print "Total revenue" twice)
MAX_PARTS = 3  # rows under a heading summed as the item it names, at most
# A line that names the rows below it and holds no figure: "Inventories, net:".
_HEADING = re.compile(r"(?m)^(?P<name>[A-Za-z][^\d\n]{2,60}?):?[ \t]*$")

# Line items as statements label their rows (case-insensitive, from the label's start).
_REVENUE = r"(?:total )?(?:net )?(?:revenues?|sales)(?: net)?$|total (?:net )?(?:revenues?|sales)\b"
_COST_OF_SALES = r"(?:total )?cost of (?:sales|revenues?|goods sold|products sold)"
_GROSS_PROFIT = r"gross (?:profit|margin)\b"
_OPERATING_INCOME = (
    r"(?:total )?operating (?:income|profit|earnings|loss)"
    r"|(?:[(/]?(?:income|earnings|loss)[)/]?\s?)+from operations"
)
_NET_INCOME = r"net (?:income|earnings)(?: \(loss\))?$"
_CURRENT_ASSETS = r"total current assets"
_CURRENT_LIABILITIES = r"total current liabilities"
_INVENTORIES = r"inventor(?:y|ies)\b"
_OPERATING_CASH = (
    r"(?:net |total )?cash (?:provided by|from|generated (?:by|from)|flows? from)"
    r"(?: \(used (?:in|for)\))? operati"
)
_CAPEX = (
    r"(?:purchases? of|payments for|additions to|acquisitions? of|expenditures for) "
    r"(?:property|premises|plant|fixed assets|capital assets)|capital expenditures?"
)
_PPE = r"property,? (?:plant,? )?(?:and|&) equipment,? net|net property|property and equipment$"
_PRETAX = r"(?:[(/]?(?:loss|income|earnings)[)/]?\s?)+before (?:provision for )?(?:income )?tax"
_TAX = (
    r"(?:provision for|\(?provision\)? ?(?:benefit )?for|benefit from) (?:income )?tax"
    r"|income tax(?:es)? \(?(?:expense|provision|benefit)"
)


@dataclass(frozen=True, slots=True)
class Measure:
    name: str
    asked: re.Pattern[str]  # how a claim or a question names it
    items: tuple[re.Pattern[str], ...]  # its line items, in the formula's order
    formula: str  # the formula over the items' cells, {0}, {1}, ... (as shown to a reader)
    averaged: tuple[int, ...] = ()  # items averaged over the year and the one before
    # A margin taken with the printed signs of its lines: an operating loss, "(3,547)",
    # is a negative margin.
    as_printed: bool = False

    def value(self, cell: Cell) -> float:
        return cell.values[-1] if self.as_printed else cell_value(cell)

    def compute(self, inputs: Sequence[float]) -> float:
        return _FORMULAS[self.formula](inputs)


_FORMULAS: dict[str, Callable[[Sequence[float]], float]] = {
    "{0} / {1}": lambda v: v[0] / v[1],
    "{0} - {1}": lambda v: v[0] - v[1],
    "({0} - {1}) / {0}": lambda v: (v[0] - v[1]) / v[0],
    "({0} - {1}) / {2}": lambda v: (v[0] - v[1]) / v[2],
    "{0} / (average {1})": lambda v: v[0] / v[1],  # the average is taken before
}
_GROSS_MARGIN = r"gross (?:profit )?margins?"
# (name, how it is named, its line items, formula); textbook definitions.
_DEFINITIONS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("gross margin", _GROSS_MARGIN, (_GROSS_PROFIT, _REVENUE), "{0} / {1}"),
    ("gross margin", _GROSS_MARGIN, (_REVENUE, _COST_OF_SALES), "({0} - {1}) / {0}"),
    (
        "operating margin",
        r"operating (?:profit )?margins?|ebit margins?",
        (_OPERATING_INCOME, _REVENUE),
        "{0} / {1}",
    ),
    (
        "net margin",
        r"net (?:profit )?margins?|profit margins?",
        (_NET_INCOME, _REVENUE),
        "{0} / {1}",
    ),
    ("effective tax rate", r"(?:effective )?(?:income )?tax rates?", (_TAX, _PRETAX), "{0} / {1}"),
    (
        "quick ratio",
        r"quick ratios?|acid[- ]test(?: ratios?)?",
        (_CURRENT_ASSETS, _INVENTORIES, _CURRENT_LIABILITIES),
        "({0} - {1}) / {2}",
    ),
    ("current ratio", r"current ratios?", (_CURRENT_ASSETS, _CURRENT_LIABILITIES), "{0} / {1}"),
    ("working capital", r"working capital", (_CURRENT_ASSETS, _CURRENT_LIABILITIES), "{0} - {1}"),
    ("free cash flow", r"free cash ?flows?|fcf", (_OPERATING_CASH, _CAPEX), "{0} - {1}"),
    (
        "free cash flow conversion",
        r"(?:free cash ?flow|fcf) conversion",
        (_OPERATING_CASH, _CAPEX, _NET_INCOME),
        "({0} - {1}) / {2}",
    ),
    (
        "capital expenditure over revenue",
        r"(?:capex|capital expenditures?) (?:as a (?:%|percent(?:age)?) of|to|over) revenues?",
        (_CAPEX, _REVENUE),
        "{0} / {1}",
    ),
    (
        "fixed asset turnover",
        r"fixed[- ]asset turnover(?: ratios?)?|pp&e turnover",
        (_REVENUE, _PPE),
        "{0} / (average {1})",
    ),
)
# (A tax rate is taken as sizes: filings print a provision in brackets or not.)
_AS_PRINTED = {"gross margin", "operating margin", "net margin"}
MEASURES: tuple[Measure, ...] = tuple(
    Measure(
        name,
        re.compile(rf"(?i)(?<![\w&])(?:{asked})(?![\w&])"),
        tuple(re.compile(f"(?i)^(?:{item})") for item in items),
        formula,
        averaged=(1,) if "average" in formula else (),
        as_printed=formula == "{0} / {1}" and name in _AS_PRINTED,
    )
    for name, asked, items, formula in _DEFINITIONS
)


@dataclass(frozen=True, slots=True)
class Value:
    """A measure's value in one year, with the cells it is computed from."""

    measure: Measure
    year: float
    value: float
    operands: tuple[Operand, ...]
    formula: str  # the measure's formula with its operands' names
    rows: int  # which choice of the items' rows it is computed from


def named_measures(text: str) -> list[Measure]:
    """The measures ``text`` (a claim and its question) names."""
    return [m for m in MEASURES if m.asked.search(text)]


def measure_words(measure: Measure, text: str = "") -> frozenset[str]:
    """The words that name the measure, as its definition and as ``text`` writes it
    ("FCF conversion"): backed by a figure computed by it."""
    written = (w for m in measure.asked.finditer(text) for w in _WORD.findall(m[0].lower()))
    return frozenset(_WORD.findall(measure.name)) | frozenset(written)


def values(measure: Measure, passages: Sequence[PassageNumbers]) -> Iterator[Value]:
    """The measure in each year its items' cells are found for (a passage's columns are
    dated by its table's header; items of different passages meet by year)."""
    lines = [_lines(item, passages) for item in measure.items]
    if not all(lines):
        return
    for choice, chosen in enumerate(itertools.product(*lines)):
        for year in sorted(set.intersection(*(set(line) for line in chosen)), reverse=True):
            operands: list[Operand] = []
            inputs: list[float] = []
            names: list[str] = []
            for i, line in enumerate(chosen):
                periods = [year, year - 1] if i in measure.averaged else [year]
                if any(y not in line for y in periods):
                    break
                parts = [part for y in periods for part in line[y]]
                operands += [p.operand(c, measure.value(c)) for p, c in parts]
                inputs.append(sum(measure.value(c) for _, c in parts) / len(periods))
                names.append(_sum(_name(c) for _, c in line[year]))
                if len(periods) > 1:
                    names[-1] += " and " + _sum(c.quantity.text for _, c in line[year - 1])
            else:
                try:
                    result = measure.compute(inputs)
                except ZeroDivisionError:
                    continue
                formula = measure.formula.format(*names)
                yield Value(measure, year, result, tuple(operands), formula, choice)


Part = tuple[PassageNumbers, Cell]
Line = dict[float, list[Part]]  # one line item: its cells by year (a printed line: one each)


def _lines(item: re.Pattern[str], passages: Sequence[PassageNumbers]) -> list[Line]:
    """The first MAX_ROWS rows (over all passages) whose label is the line item; where
    none is, the item printed as its parts under a heading ("Inventories, net:" over
    "Raw materials" and "Work in process"): the first 1..MAX_PARTS rows under it summed."""
    found: list[Line] = []
    for p in passages:
        rows: dict[int, list[Part]] = {}
        for cell in p.table_cells():
            if cell.year is not None and item.match(cell.label.strip(" :$")):
                rows.setdefault(cell.row, []).append((p, cell))
        found += [_by_year(cells) for cells in rows.values()]
    if found:
        return found[:MAX_ROWS]
    for p in passages:
        for heading in _HEADING.finditer(p.text):
            if not item.match(heading["name"].strip()):
                continue
            below = [c for c in p.table_cells() if c.quantity.start > heading.end() and c.year]
            under = sorted({c.row for c in below})
            for k in range(1, min(MAX_PARTS, len(under)) + 1):
                if under[k - 1] != under[0] + k - 1:
                    break  # parts are consecutive rows
                found.append(_by_year([(p, c) for c in below if c.row in under[:k]]))
            return found
    return found


def _by_year(parts: Sequence[Part]) -> Line:
    line: Line = {}
    for p, cell in parts:
        if cell.year is not None:
            line.setdefault(cell.year, []).append((p, cell))
    return line


def _sum(names: Iterable[str]) -> str:
    """Parts summed, bracketed when there are several: "(Raw materials 992 + ...)"."""
    found = list(names)
    return found[0] if len(found) == 1 else f"({' + '.join(found)})"


def _name(cell: Cell) -> str:
    return f"{cell.label} {cell.quantity.text}".strip() if cell.label else cell.quantity.text
