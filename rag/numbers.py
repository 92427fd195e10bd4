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
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from rag.lemmas import topic_lemmas

SCALES = {
    "thousand": 1e3,
    "thousands": 1e3,
    "k": 1e3,
    "million": 1e6,
    "millions": 1e6,
    "mn": 1e6,
    "m": 1e6,
    "billion": 1e9,
    "billions": 1e9,
    "bn": 1e9,
    "b": 1e9,
    "trillion": 1e12,
    "trillions": 1e12,
}
_NUMBER = re.compile(
    r"(?P<minus>[-−–](?=[$€£]?\d))?(?P<open>\()?(?:(?P<currency>US\$|[$€£])\s?)?"
    r"(?P<digits>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?P<close>\))?"
    r"(?:[ \t]?(?P<percent>%|percent\b|per cent\b|percentage points?\b|points?\b|pp\b))?"
    r"(?:[ \t]?(?P<scale>thousands?|millions?|billions?|trillions?|bn|mn)\b"
    r"|(?<=\d)(?P<short>[kKmMbB])\b)?"
)
# "(Millions)", "(in millions, except per share amounts)", "Dollars in thousands".
_STATED_SCALE = re.compile(
    r"(?i)\(\s*(?:(?:dollars|amounts|\$|usd)\s+)?(?:in\s+)?(thousands|millions|billions)\b"
    r"|\bin\s+(?:usd\s+|us\s+dollars\s+)?(thousands|millions|billions)\b"
)
_FISCAL_YEAR = re.compile(r"(?i)\b(?:FY|CY)\s?'?(\d{2}|\d{4})\b")
_APPROXIMATE = re.compile(r"(?i)(?:~|\babout|\bapproximately|\broughly|\baround|\bnearly)\s*$")
_ROW_GAP = re.compile(r"[\s$€£%()\-—–]*")  # what may stand between the cells of a row
_TOTAL = re.compile(r"(?i)\btotal\b|\brevenues?\b|\bnet sales\b|\bsales\b")
_LABEL_WORD = re.compile(r"[A-Za-z]{3,}")
_DIGITS = re.compile(r"\d+(?:[.,]\d+)*")
_CODE_TAIL = re.compile(r"-[A-Za-z]")
_LEADING_ZERO = re.compile(r"0\d")
_ENUMERATOR = re.compile(r"\(\d\)")
LABEL_CHARS = 80  # how much text before a row's first cell names the row
# Table cells give hundreds of differences and ratios: a figure with fewer digits than
# this would follow from some of them by chance (the claim's own figures are few).
MIN_DERIVED_DIGITS = 3
MAX_PARTS = 6  # a column's parts summed: at most this many consecutive rows
RELATIVE_SLACK = 1e-9


class Backing(StrEnum):
    STANDS = "stands"  # written in the passage, up to formatting and scale
    FOLLOWS = "follows"  # one step of arithmetic from numbers that stand
    UNBACKED = "unbacked"


@dataclass(frozen=True, slots=True)
class Quantity:
    """A number as written: where, its value (scale applied, percent as a fraction) and
    the value of one unit of its last written digit (the rounding it allows)."""

    text: str
    start: int
    end: int
    value: float
    unit: float
    percent: bool = False
    scale: float = 1.0  # the scale written with it ("million")
    scaled: bool = False  # a scale word was written with it, or the question states one
    currency: bool = False
    year: bool = False
    accounting_negative: bool = False  # "(1,577)": a table's outflow, not a minus sign
    approximate: bool = False  # "~13%", "about 40"


@dataclass(frozen=True, slots=True)
class Operand:
    n: int  # the passage, numbered from 1
    start: int  # span of the cell in the passage text
    end: int
    text: str
    value: float  # as read, its stated scale applied
    label: str  # the row's name, as far as the text says it


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


@dataclass(frozen=True, slots=True)
class _Cell:
    quantity: Quantity
    values: tuple[float, ...]  # what the cell may mean: as written, and under a stated scale
    row: int
    column: int
    label: str


def stated_scale(text: str) -> float | None:
    """The scale a table or a question states for its plain numbers ("(Millions)")."""
    found = _STATED_SCALE.search(text)
    if found is None:
        return None
    return SCALES[(found.group(1) or found.group(2)).lower()]


def quantities(text: str) -> list[Quantity]:
    """The numbers of a text with their values. Numbers inside names ("P100", "COVID-19")
    are left out; fiscal years ("FY2018", "FY22") are read as years."""
    found = []
    for match in _NUMBER.finditer(text):
        before = text[max(0, match.start() - 1) : match.start()]
        after = text[match.end() : match.end() + 1]
        fiscal = _FISCAL_YEAR.search(text, max(0, match.start() - 4), match.end())
        if fiscal is not None and fiscal.end() == match.end():
            year = int(fiscal.group(1))
            year += 2000 if year < 100 else 0
            found.append(Quantity(match.group(), match.start(), match.end(), year, 1, year=True))
            continue
        named = bool(before) and (before.isalnum() or before in "_/")
        if named or after.isalnum() or _CODE_TAIL.match(text, match.end()):
            continue  # part of a name or a code: "P100", "COVID-19", "10-K"
        if match.group("short") and not match.group("currency"):
            continue  # "3M", "5B": a name, not "3 million" (that is "$3M")
        if _ENUMERATOR.fullmatch(match.group().strip()):
            continue  # "(1)": a list's or a footnote's mark
        if _LEADING_ZERO.match(match.group("digits")):
            continue  # "05", "08": a code; coded_numbers matches it as written
        found.append(_quantity(text, match))
    return found


def _quantity(text: str, match: re.Match[str]) -> Quantity:
    digits = match.group("digits").replace(",", "")
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    scale_word = match.group("scale") or (match.group("short") if match.group("currency") else None)
    scale = SCALES[scale_word.lower()] if scale_word else 1.0
    percent = bool(match.group("percent"))
    factor = scale * (0.01 if percent else 1.0)
    value = float(digits) * factor
    accounting = bool(match.group("open") and match.group("close"))
    if match.group("minus") or accounting:
        value = -value
    whole = "." not in digits and "," not in match.group("digits")
    year = whole and not percent and not scale_word and not match.group("currency")
    year = year and 1900 <= float(digits) <= 2100
    approximate = bool(_APPROXIMATE.search(text[max(0, match.start() - 16) : match.start()]))
    return Quantity(
        text=match.group().strip().lstrip("(" if not match.group("close") else ""),
        start=match.start(),
        end=match.end(),
        value=value,
        unit=10.0**-decimals * factor,
        percent=percent,
        scale=scale,
        scaled=bool(scale_word),
        currency=bool(match.group("currency")),
        year=year,
        accounting_negative=accounting and not match.group("minus"),
        approximate=approximate,
    )


def agrees(claimed: Quantity, value: float) -> bool:
    """The claimed number is ``value`` written to the claim's precision. A plain whole
    number (a count: "4 open reading frames") must be exact; an amount, a percent or a
    number with decimals may be rounded ("$1.6 billion" for 1,577 million)."""
    slack = 0.0 if _is_count(claimed) else claimed.unit * (1.0 if claimed.approximate else 0.5)
    slack += RELATIVE_SLACK * max(abs(value), 1.0)
    return abs(claimed.value - value) <= slack


class PassageNumbers:
    """The cells of a passage: its numbers in rows (a label, then the numbers that follow
    it with nothing but space, currency signs and brackets between). A row has at most as
    many cells as the table's header has years, so a row without a label starts anew."""

    def __init__(self, n: int, text: str) -> None:
        self.n = n
        self.text = text
        self.scale = stated_scale(text)
        self.has_percent = "%" in text or "percent" in text.lower()
        self.cells: list[_Cell] = []
        found = quantities(text)
        width = _header_width(text, found)
        row, column, previous_end, label = -1, 0, -1, ""
        for quantity in found:
            gap = text[previous_end : quantity.start] if previous_end >= 0 else "x"
            if previous_end < 0 or not _ROW_GAP.fullmatch(gap):
                row, column = row + 1, 0
                label = _label(text[max(0, quantity.start - LABEL_CHARS) : quantity.start])
            elif width and column + 1 >= width and not quantity.year:
                row, column, label = row + 1, 0, ""
            else:
                column += 1
            values = [quantity.value]
            if self.scale and not (quantity.scaled or quantity.percent or quantity.year):
                values.append(quantity.value * self.scale)
            self.cells.append(_Cell(quantity, tuple(values), row, column, label))
            previous_end = quantity.end
        self._table_rows = {c.row for c in self.table_cells()}

    def operand(self, cell: _Cell, value: float) -> Operand:
        q = cell.quantity
        return Operand(self.n, q.start, q.end, q.text, value, cell.label)

    def standing(self, claimed: Quantity) -> Operand | None:
        """The cell that says the claimed number, up to formatting and scale."""
        for cell in self.cells:
            q = cell.quantity
            if claimed.year or q.year:
                if claimed.year and q.year and claimed.value == q.value:
                    return self.operand(cell, q.value)
                continue
            candidates = [v for v in cell.values if claimed.percent == q.percent]
            lost_header = self.scale is None and cell.row in self._table_rows
            if lost_header and claimed.scaled and not (q.scaled or q.percent):
                candidates.append(q.value * claimed.scale)  # the passage states no scale
            if claimed.percent and not q.percent and q.unit < 1:  # written with decimals
                candidates.append(q.value)  # 1.9% is 0.019
                if self.has_percent:
                    candidates.append(q.value / 100)  # "36.8" in a column of percents
            for value in candidates:
                if q.accounting_negative:
                    # "(1,577)": an outflow, its size is what is said; a minus in a
                    # claim ("-$1,577") names a negative number, which brackets are not
                    value = abs(value)
                if agrees(claimed, value):
                    return self.operand(cell, value)
        return None

    def table_cells(self) -> list[_Cell]:
        """Cells of rows with two or more (a table's; prose has numbers one by one)."""
        sizes = Counter(c.row for c in self.cells if not c.quantity.year)
        return [c for c in self.cells if not c.quantity.year and sizes[c.row] >= 2]

    def row_pairs(self) -> Iterator[tuple[_Cell, _Cell]]:
        """Neighbouring cells of one row (one line item in two periods)."""
        numeric = self.table_cells()
        for a, b in itertools.pairwise(numeric):
            if a.row == b.row:
                yield a, b
                yield b, a

    def column_pairs(self) -> Iterator[tuple[_Cell, _Cell]]:
        """Two cells of one column in different rows (a measure over another)."""
        numeric = self.table_cells()
        for a, b in itertools.permutations(numeric, 2):
            if a.row != b.row and a.column == b.column:
                yield a, b

    def column_sums(self) -> Iterator[list[_Cell]]:
        """Runs of 2..MAX_PARTS consecutive rows' cells of one column."""
        numeric = self.table_cells()
        columns: dict[int, list[_Cell]] = {}
        for cell in numeric:
            columns.setdefault(cell.column, []).append(cell)
        for cells in columns.values():
            for i in range(len(cells)):
                for j in range(i + 2, min(len(cells), i + MAX_PARTS) + 1):
                    run = cells[i:j]
                    if all(b.row == a.row + 1 for a, b in itertools.pairwise(run)):
                        yield run


def _header_width(text: str, found: Sequence[Quantity]) -> int:
    """How many cells a row has: the length of the first run of two or more years that
    stand together (a table's header), 0 when there is none."""
    run = 1
    for a, b in itertools.pairwise(found):
        if a.year and b.year and _ROW_GAP.fullmatch(text[a.end : b.start]):
            run += 1
        elif run > 1:
            break
    return run if run > 1 else 0


def _label(before: str) -> str:
    """The row's name: the last line of words before its first cell."""
    lines = [line.strip(" $:") for line in before.splitlines() if _LABEL_WORD.search(line)]
    return " ".join(lines[-1].split()) if lines else ""


def _value(cell: _Cell) -> float:
    """A cell's magnitude as the table reports it (outflows in brackets read positive)."""
    value = cell.values[-1]
    return abs(value) if cell.quantity.accounting_negative else value


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


def _is_count(q: Quantity) -> bool:
    return q.unit == 1.0 and not (q.percent or q.scaled or q.currency)


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
    if claimed.year or _is_count(claimed):
        return None  # a count ("16 days", "4 frames") is stated, not computed
    for a, b in itertools.permutations(standing, 2):
        found = _pair(claimed, a, b, ("difference", "percent change"))
        if found:
            return found
    if _significant_digits(claimed) < MIN_DERIVED_DIGITS:
        return None  # "1.9%" lies within rounding of some ratio of any table's cells

    def named(cell: _Cell) -> bool:
        return bool(topic_lemmas(cell.label) & topic)

    for p in passages:
        for x, y in p.row_pairs():
            if named(x):
                found = _pair(
                    claimed,
                    p.operand(x, _value(x)),
                    p.operand(y, _value(y)),
                    ("difference", "percent change"),
                )
                if found:
                    return found
        for part, whole in p.column_pairs():
            if named(part) and (_TOTAL.search(whole.label) or named(whole)):
                found = _pair(
                    claimed,
                    p.operand(part, _value(part)),
                    p.operand(whole, _value(whole)),
                    ("share",),
                )
                if found:
                    return found
        for run in p.column_sums():
            if any(named(c) for c in run):
                operands = tuple(p.operand(c, _value(c)) for c in run)
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


def coded_numbers(text: str) -> set[str]:
    """Digit runs of a text that are parts of names or codes ("P100", "COVID-19"): not
    quantities, so they are matched as written."""
    covered = [(q.start, q.end) for q in quantities(text)]
    return {
        m.group()
        for m in _DIGITS.finditer(text)
        if not any(start <= m.start() < end for start, end in covered)
    }
