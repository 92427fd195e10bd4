"""Numbers as written in claims and passages: values, scales and the cells of tables.

rag.number_checks decides with them whether a claim's numbers are backed (it says how).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

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
_LABEL_WORD = re.compile(r"[A-Za-z]{3,}")
_DIGITS = re.compile(r"\d+(?:[.,]\d+)*")
_CODE_TAIL = re.compile(r"-[A-Za-z]")
_LEADING_ZERO = re.compile(r"0\d")
_ENUMERATOR = re.compile(r"\(\d\)")
LABEL_CHARS = 80  # how much text before a row's first cell names the row
MAX_PARTS = 6  # a column's parts summed: at most this many consecutive rows
RELATIVE_SLACK = 1e-9


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
    year: float | None = None  # the year heading its column


@dataclass(frozen=True, slots=True)
class Cell:
    quantity: Quantity
    values: tuple[float, ...]  # what the cell may mean: as written, and under a stated scale
    row: int
    column: int
    label: str
    year: float | None = None  # the year heading its column, when the table has a header


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


def claimed_quantities(claim: str, scale: float | None = None) -> list[Quantity]:
    """The numbers of a claim as it means them: a plain number under the ``scale`` its
    question states ("Answer in USD millions"), "(45)" as a size, cents of an amount in
    millions as formatting."""
    return [_as_written(_with_scale(_as_size(q), scale)) for q in quantities(claim)]


def _as_size(q: Quantity) -> Quantity:
    """A claim's "(45)" is a number in parentheses, not an outflow: its size is meant."""
    if not q.accounting_negative:
        return q
    return replace(q, value=abs(q.value), accounting_negative=False)


def _with_scale(q: Quantity, scale: float | None) -> Quantity:
    if scale is None or q.scaled or q.percent or q.year:
        return q
    return replace(q, value=q.value * scale, unit=q.unit * scale, scale=scale, scaled=True)


def _as_written(q: Quantity) -> Quantity:
    """An amount in millions or billions written with cents ("$382.00", "$8.70") is
    formatted, not that precise: its precision is its last digit other than a trailing 0."""
    digits = re.sub(r"[^\d.]", "", q.text)
    if not (q.currency and q.scale >= 1e6 and "." in digits):
        return q
    decimals = digits.split(".")[1]
    if len(decimals) != 2 or not decimals.endswith("0"):
        return q
    return replace(q, unit=10.0 ** -len(decimals.rstrip("0")) * q.scale)


def is_count(q: Quantity) -> bool:
    """A plain number with no unit, scale or currency: a count, which is never rounded."""
    return q.unit == 1.0 and not (q.percent or q.scaled or q.currency)


def agrees(claimed: Quantity, value: float) -> bool:
    """The claimed number is ``value`` written to the claim's precision. A plain whole
    number (a count: "4 open reading frames") must be exact; an amount, a percent or a
    number with decimals may be rounded ("$1.6 billion" for 1,577 million)."""
    slack = 0.0 if is_count(claimed) else claimed.unit * (1.0 if claimed.approximate else 0.5)
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
        self.cells: list[Cell] = []
        found = quantities(text)
        width = _header_width(text, found)
        self.tabular = bool(width) or self.scale is not None  # a statement's table
        # Column years only under a statement's stated scale or a header of years, and
        # only for table rows: a year in prose dates no column.
        headers = _column_years(text, found, loose=self.scale is not None)
        placed: list[tuple[Quantity, list[float], int, int, str, tuple[float, ...]]] = []
        row, column, previous_end, label = -1, 0, -1, ""
        for quantity, header in zip(found, headers, strict=True):
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
            placed.append((quantity, values, row, column, label, header))
            previous_end = quantity.end
        sizes = Counter(r for q, _, r, _, _, _ in placed if not q.year)
        for quantity, values, row, column, label, header in placed:
            dated = column < len(header) and not quantity.year and sizes[row] >= 2
            year = header[column] if dated else None
            self.cells.append(Cell(quantity, tuple(values), row, column, label, year))
        self._table_rows = {c.row for c in self.table_cells()}

    def operand(self, cell: Cell, value: float) -> Operand:
        q = cell.quantity
        return Operand(self.n, q.start, q.end, q.text, value, cell.label, cell.year)

    def standing(self, claimed: Quantity, year: float | None = None) -> Operand | None:
        """The cell that says the claimed number, up to formatting and scale. With a
        ``year``: a cell of that year's column, else one no column dates, unless a
        table gives the number to another year (then it is that year's)."""
        undated: Operand | None = None
        elsewhere = False  # a table dates it to another year
        for cell in self.cells:
            size = self._says(claimed, cell)
            if size is None:
                continue
            found = self.operand(cell, size)
            if year is None or claimed.year or cell.year == year:
                return found
            elsewhere = elsewhere or cell.year is not None
            undated = undated or found
        return None if elsewhere else undated

    def _says(self, claimed: Quantity, cell: Cell) -> float | None:
        """The value of the cell that agrees with the claimed number, if one does."""
        q = cell.quantity
        if claimed.year or q.year:
            return q.value if claimed.year and q.year and claimed.value == q.value else None
        candidates = [v for v in cell.values if claimed.percent == q.percent]
        lost_header = self.scale is None and cell.row in self._table_rows
        if lost_header and claimed.scaled and not (q.scaled or q.percent):
            candidates.append(q.value * claimed.scale)  # the passage states no scale
        if claimed.percent and not q.percent and q.unit < 1:  # written with decimals
            candidates.append(q.value)  # 1.9% is 0.019
            if self.has_percent:
                candidates.append(q.value / 100)  # "36.8" in a column of percents
        for value in candidates:
            # "(1,577)": an outflow, its size is what is said; a minus in a claim
            # ("-$1,577") names a negative number, which brackets are not. A rate in
            # brackets, "(14.76)%", is negative: either is said.
            sizes = [value]
            if q.accounting_negative:
                sizes = [abs(value), value] if q.percent else [abs(value)]
            for size in sizes:
                if agrees(claimed, size):
                    return size
        return None

    def table_cells(self) -> list[Cell]:
        """Cells of rows with two or more (a table's; prose has numbers one by one)."""
        sizes = Counter(c.row for c in self.cells if not c.quantity.year)
        return [c for c in self.cells if not c.quantity.year and sizes[c.row] >= 2]

    def row_pairs(self) -> Iterator[tuple[Cell, Cell]]:
        """Neighbouring cells of one row (one line item in two periods)."""
        numeric = self.table_cells()
        for a, b in itertools.pairwise(numeric):
            if a.row == b.row:
                yield a, b
                yield b, a

    def column_pairs(self) -> Iterator[tuple[Cell, Cell]]:
        """Two cells of one column in different rows (a measure over another)."""
        numeric = self.table_cells()
        for a, b in itertools.permutations(numeric, 2):
            if a.row != b.row and a.column == b.column:
                yield a, b

    def column_sums(self) -> Iterator[list[Cell]]:
        """Runs of 2..MAX_PARTS consecutive rows' cells of one column."""
        numeric = self.table_cells()
        columns: dict[int, list[Cell]] = {}
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


def _column_years(text: str, found: Sequence[Quantity], loose: bool) -> list[tuple[float, ...]]:
    """For each number, the years heading the table's columns above it: the last run of
    two or more years standing together before it, else (when ``loose``) the distinct
    years written before the first row of two figures ("At December 31, 2019 At December
    31, 2018")."""
    result: list[tuple[float, ...]] = []
    header: tuple[float, ...] = ()
    run: list[float] = []
    written: list[float] = []
    previous: Quantity | None = None
    in_table = False
    for q in found:
        gap = text[previous.end : q.start] if previous is not None else "x"
        together = _ROW_GAP.fullmatch(gap) is not None
        if q.year:
            run = [*run, q.value] if together and previous and previous.year else [q.value]
            if len(run) >= 2:
                header = tuple(run)
            elif loose and not in_table and q.value not in written:
                written.append(q.value)
        elif together and previous is not None and not previous.year:
            in_table = True  # two figures in a row: the header, if any, is above
        result.append(header or (tuple(written) if len(written) >= 2 else ()))
        previous = q
    return result


def _label(before: str) -> str:
    """The row's name: the last line of words before its first cell."""
    lines = [line.strip(" $:") for line in before.splitlines() if _LABEL_WORD.search(line)]
    return " ".join(lines[-1].split()) if lines else ""


def cell_value(cell: Cell) -> float:
    """A cell's magnitude as the table reports it (outflows in brackets read positive)."""
    value = cell.values[-1]
    return abs(value) if cell.quantity.accounting_negative else value


def coded_numbers(text: str) -> set[str]:
    """Digit runs of a text that are parts of names or codes ("P100", "COVID-19"): not
    quantities, so they are matched as written."""
    covered = [(q.start, q.end) for q in quantities(text)]
    return {
        m.group()
        for m in _DIGITS.finditer(text)
        if not any(start <= m.start() < end for start, end in covered)
    }
