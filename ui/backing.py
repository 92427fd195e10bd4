"""How sentences are backed, as safe HTML: each number's cell or derivation (with the
cells' values and pages), and each sentence of a checked text with its label and the
words of the passage that back it.

Document text, model output and pasted text are escaped like everywhere on the page.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from core.api_models import (
    Backing,
    Highlight,
    NumberCheckOut,
    NumberedPassage,
    OperandOut,
    Support,
    VerifiedSentence,
    VerifyResult,
)
from ui.render import BADGE_STYLE, MARK_STYLE, escape_html, marked_html, pages_label, reflow

SUPPORT_LABELS = {
    Support.SUPPORTED: ("supported", "rgb(33, 130, 70)", "rgba(33, 195, 84, 0.16)"),
    Support.WEAK: ("weak", "rgb(170, 110, 0)", "rgba(255, 170, 0, 0.18)"),
    Support.UNSUPPORTED: ("unsupported", "rgb(200, 40, 40)", "rgba(255, 75, 75, 0.16)"),
}
_PLAIN_NUMBER = re.compile(r"[^\d.\-]")
_SENTENCE_END = re.compile(r"[.!?:;]\s+")
LABEL_WORDS = 8  # of a row's name: in prose, the words just before the number


def number_value(value: float) -> str:
    """A value as people read it: 177,866,000,000; 0.6923; -2.2."""
    if value.is_integer() and abs(value) < 1e15:
        return f"{value:,.0f}"
    return f"{value:,.6g}" if abs(value) >= 1 else f"{value:.4g}"


def _badge(n: int) -> str:
    return f'<span style="{BADGE_STYLE}">{n}</span>'


def _written_value(text: str) -> float | None:
    try:
        return float(_PLAIN_NUMBER.sub("", text))
    except ValueError:
        return None


def row_name(label: str) -> str:
    """A cell's row name as shown: in prose, where the 'row' is the text before the number,
    only its last clause, and at most its last few words."""
    words = _SENTENCE_END.split(label.strip())[-1].split()
    shown = " ".join(words[-LABEL_WORDS:])
    return shown if len(words) <= LABEL_WORDS else f"… {shown}"


def operand_html(operand: OperandOut, by_n: Mapping[int, NumberedPassage]) -> str:
    """A cell: its row's name, the number as written, its value when a scale applies, and
    the passage and page it stands on."""
    parts = []
    if operand.label:
        parts.append(f"{escape_html(row_name(operand.label))}: ")
    parts.append(f"“{escape_html(operand.text.strip())}”")
    if _written_value(operand.text) != operand.value:
        parts.append(f" = {number_value(operand.value)}")
    passage = by_n.get(operand.n)
    place = f"{escape_html(passage.filename)}, {pages_label(passage)}" if passage else "passage"
    parts.append(f" ({_badge(operand.n)} {place})")
    return "".join(parts)


def number_html(check: NumberCheckOut, by_n: Mapping[int, NumberedPassage]) -> str:
    """One number of a sentence: where it stands, how it follows, or that it does neither."""
    number = f"<b>{escape_html(check.text.strip())}</b>"
    if check.backing is Backing.STANDS:
        if check.source is None:
            return f"{number} is the period the question asks about"
        return f"{number} stands in {operand_html(check.source, by_n)}"
    if check.backing is Backing.FOLLOWS:
        how = f"{number} = {escape_html(check.derivation or check.operation or 'a step')}"
        cells = "; ".join(operand_html(o, by_n) for o in check.operands)
        return f"{how}, from {cells}" if cells else how
    return f"{number} neither stands in the passages nor follows from them"


def numbers_html(numbers: Sequence[NumberCheckOut], sources: Sequence[NumberedPassage]) -> str:
    """Each number of a sentence and how it is backed, as a list ('' when it has none)."""
    if not numbers:
        return ""
    by_n = {p.n: p for p in sources}
    items = "".join(
        f'<li data-backing="{check.backing}">{number_html(check, by_n)}</li>' for check in numbers
    )
    return (
        '<ul data-pgpt="numbers" style="margin: 0.2rem 0 0.2rem 1.2rem; padding: 0; '
        f'font-size: 0.9em">{items}</ul>'
    )


def claims_numbers_html(
    claims: Sequence[tuple[str, Sequence[NumberCheckOut]]], sources: Sequence[NumberedPassage]
) -> str:
    """Each sentence that has numbers, then how each of them is backed."""
    blocks = [
        f'<div data-pgpt="claim-numbers" style="margin: 0.3rem 0">“{escape_html(text)}”'
        f"{numbers_html(numbers, sources)}</div>"
        for text, numbers in claims
        if numbers
    ]
    return "".join(blocks)


def support_label_html(support: Support) -> str:
    text, color, background = SUPPORT_LABELS[support]
    return (
        f'<span data-pgpt="support-label" style="display: inline-block; padding: 0 0.45em; '
        f"border-radius: 0.6em; background: {background}; color: {color}; font-size: 0.85em; "
        f'font-weight: 600">{text}</span>'
    )


def _backing_html(
    support: Support, passage: NumberedPassage | None, highlight: Highlight | None
) -> str:
    """The passage and span that back the sentence best: file, page and the words."""
    if passage is None:
        return "No passage of your documents backs it."
    lead = "Backed by" if support is Support.SUPPORTED else "Closest passage:"
    head = f"{lead} {_badge(passage.n)} <b>{escape_html(passage.filename)}</b>"
    if highlight is None or not 0 <= highlight.start < highlight.end <= len(passage.text):
        return f"{head}, {pages_label(passage)}"
    place = pages_label(passage.model_copy(update={"highlight": highlight}))
    words = " ".join(passage.text[highlight.start : highlight.end].split())
    spans = [(highlight.start, highlight.end)]
    return (
        f'{head}, {place}: “<mark style="{MARK_STYLE}">{escape_html(words)}</mark>”'
        '<details style="margin-top: 0.2rem"><summary>The whole passage</summary>'
        f'<div style="font-size: 0.92em; line-height: 1.5">'
        f"{marked_html(reflow(passage.text), spans)}</div></details>"
    )


def checked_sentence_html(sentence: VerifiedSentence, sources: Sequence[NumberedPassage]) -> str:
    """One sentence of a checked text: its label, itself, what backs it, its numbers."""
    by_n = {p.n: p for p in sources}
    passage = by_n.get(sentence.passage) if sentence.passage is not None else None
    color = SUPPORT_LABELS[sentence.support][1]
    return (
        f'<div data-pgpt="checked-sentence" data-support="{sentence.support}" '
        f'style="border-left: 4px solid {color}; padding: 0.3rem 0.7rem; margin: 0.4rem 0">'
        f"<div>{support_label_html(sentence.support)} {escape_html(sentence.text)}</div>"
        f'<div style="font-size: 0.9em; margin-top: 0.2rem">'
        f"{_backing_html(sentence.support, passage, sentence.highlight)}</div>"
        f"{numbers_html(sentence.numbers, sources)}</div>"
    )


def checked_text_html(result: VerifyResult) -> str:
    """Every sentence of a checked text, in order."""
    sentences = "".join(checked_sentence_html(s, result.sources) for s in result.sentences)
    return f'<div data-pgpt="checked-text">{sentences}</div>'


def support_summary(result: VerifyResult) -> str:
    """'3 sentences: 2 supported, 1 unsupported'."""
    total = len(result.sentences)
    counts = [
        f"{count} {SUPPORT_LABELS[support][0]}"
        for support in Support
        if (count := sum(s.support is support for s in result.sentences))
    ]
    return f"{total} sentence{'s' * (total != 1)}: {', '.join(counts)}"
