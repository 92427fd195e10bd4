"""The conversation as a Markdown file, built in memory and sent to the browser (never saved)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from core.api_models import NumberedPassage
from ui.render import pages_label
from ui.state import Turn

QUOTE_CHARS = 200


def conversation_markdown(
    turns: Sequence[Turn], documents: Sequence[str], exported_at: datetime
) -> str:
    """Every question, answer and citation (file and page, with the words that back it)."""
    lines = [
        "# PrivateGPT++ conversation",
        "",
        f"Exported {exported_at.strftime('%Y-%m-%d %H:%M %Z').strip()}.",
    ]
    if documents:
        lines.append("Documents: " + ", ".join(documents) + ".")
    for number, turn in enumerate(turns, start=1):
        lines += ["", f"## {number}. {one_line(turn.question)}", ""]
        lines += turn_lines(turn)
    return "\n".join(lines) + "\n"


def turn_lines(turn: Turn) -> list[str]:
    result = turn.result
    if result is None:
        lines = [f"*No answer: {turn.error or 'the answer was stopped before it was complete'}*"]
        if turn.sources:
            lines += ["", "Passages that best matched the question:", ""]
            lines += [citation_line(p) for p in turn.sources]
        return lines
    lines = []
    if result.standalone_question and result.standalone_question != turn.question:
        lines += [f"*Searched as: {one_line(result.standalone_question)}*", ""]
    lines += [result.answer.strip(), ""]
    if result.citations:
        lines += ["Citations:", ""]
        lines += [citation_line(p) for p in result.citations]
    else:
        lines += ["No passage cited. Passages given to the model:", ""]
        lines += [citation_line(p) for p in result.sources]
    return lines


def citation_line(passage: NumberedPassage) -> str:
    return f"- [{passage.n}] {passage.filename}, {pages_label(passage)}: “{quote(passage)}”"


def quote(passage: NumberedPassage) -> str:
    """The words that back the answer when known, else the passage's beginning."""
    span = passage.highlight
    text = passage.text[span.start : span.end] if span is not None else passage.text
    text = one_line(text)
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1].rstrip() + "…"


def one_line(text: str) -> str:
    return " ".join(text.split())
