"""Safe HTML and Markdown for the page: answers with citation badges, source cards, labels.

Model output and document text are always escaped: never rendered as markup or math.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

from core.api_models import DocumentOut, NumberedPassage
from rag.citations import CITATION_PATTERN, marker_numbers

# Words too common to be worth highlighting in a passage.
STOPWORD_LIST = """a about above after again against all also am an and any are as at be because
    been before being below between both but by can could did do does doing down
    during each few for from further had has have having he her here hers him
    his how i if in into is it its itself just me more most my no nor not now of
    off on once only or other our out over own same she should so some such than
    that the their them then there these they this those through to too under
    until up very was we were what when where which while who whom why will with
    would you your yours many much used use using one two"""
STOPWORDS = frozenset(STOPWORD_LIST.split())
WORD = re.compile(r"[^\W_]+(?:[-'][^\W_]+)*")

MARK_STYLE = (
    "background: rgba(255, 196, 0, 0.38); color: inherit; padding: 0 1px; border-radius: 3px"
)
BADGE_STYLE = (
    "display: inline-block; min-width: 1.3em; padding: 0 0.35em; margin: 0 1px; "
    "border-radius: 0.6em; background: rgba(28, 131, 225, 0.16); color: rgb(28, 110, 200); "
    "font-size: 0.8em; font-weight: 600; text-align: center; text-decoration: none; "
    "vertical-align: 0.1em; line-height: 1.45"
)
BAD_BADGE_STYLE = BADGE_STYLE.replace(
    "rgba(28, 131, 225, 0.16)", "rgba(255, 75, 75, 0.16)"
).replace("rgb(28, 110, 200)", "rgb(200, 40, 40)")


def highlight_terms(*texts: str) -> set[str]:
    """Lower-cased content words of the texts (no stopwords, citation numbers or 1-letter words)."""
    terms: set[str] = set()
    for text in texts:
        for word in WORD.findall(CITATION_PATTERN.sub(" ", text)):
            lowered = word.lower()
            if lowered not in STOPWORDS and (len(lowered) > 1 or lowered.isdigit()):
                terms.add(lowered)
    return terms


def passage_highlights(
    passage: NumberedPassage, question: str, answer: str
) -> list[tuple[int, int]]:
    """Character spans of the passage's text to highlight on its source card.

    The exact span that backs the answer when the API found one; otherwise the words of
    the question and the answer that occur in the passage.
    """
    exact = passage.highlight
    if exact is not None and 0 <= exact.start < exact.end <= len(passage.text):
        return [(exact.start, exact.end)]
    terms = highlight_terms(question, answer)
    return [m.span() for m in WORD.finditer(passage.text) if m.group().lower() in terms]


def marked_html(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """HTML-escaped ``text`` with ``spans`` wrapped in <mark>; line breaks kept."""
    parts: list[str] = []
    position = 0
    for start, end in sorted(spans):
        if start < position:
            continue  # overlapping span: the earlier one wins
        parts.append(escape_html(text[position:start]))
        parts.append(f'<mark style="{MARK_STYLE}">{escape_html(text[start:end])}</mark>')
        position = end
    parts.append(escape_html(text[position:]))
    return "".join(parts)


SOFT_LINE_BREAK = re.compile(r"(?<=[^\s.:;!?])\n(?=[a-z(])")


def reflow(text: str) -> str:
    """Join lines a PDF broke mid-sentence; keep headings, lists and table rows apart.

    The length is unchanged, so highlight offsets still apply.
    """
    return SOFT_LINE_BREAK.sub(" ", text)


def escape_html(text: str) -> str:
    """Escaped text that stays literal: no markup, no math, line breaks as <br>."""
    escaped = html.escape(text).replace("$", "&#36;")
    return escaped.replace("\r\n", "\n").replace("\n", "<br>")


MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$:])")


def escape_markdown(text: str) -> str:
    """Text shown literally inside st.markdown (file names, questions)."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", text)


def card_anchor(turn: int, n: int) -> str:
    return f"pgpt-source-{turn}-{n}"


def pages_label(passage: NumberedPassage) -> str:
    """Where the passage is: 'page 7', 'slide 2', 'sheet 2 · Budget', 'Intro > Costs'."""
    unit, first, last = passage.page_unit, passage.page, passage.page_end
    if unit == "document":  # Word, HTML: no fixed pages, the heading is the place
        label = passage.section or "the document"
    else:
        label = f"{unit} {first}" if last <= first else f"{unit}s {first}–{last}"
        if last > first and passage.highlight is not None:
            label += f" (highlight on {unit} {passage.highlight.page})"
        if unit in ("sheet", "slide") and passage.section:
            label += f" · {passage.section}"
    if passage.ocr:
        label += " (read by OCR)"
    return label


def size_label(doc: DocumentOut) -> str:
    """'12 pages · 40 passages · 12 pages read by OCR' (slides, sheets as such)."""
    unit = "page" if doc.page_unit == "document" else doc.page_unit
    pages, chunks = doc.pages, doc.chunks
    label = f"{pages} {unit}{'s' * (pages != 1)} · {chunks} passage{'s' * (chunks != 1)}"
    if doc.page_unit == "document" and pages == 1:
        label = f"{chunks} passage{'s' * (chunks != 1)}"
    ocr = len(doc.ocr_pages)
    if ocr:
        label += f" · {ocr} page{'s' * (ocr != 1)} read by OCR"
    return label


def ocr_progress_label(pages_done: int, pages_total: int) -> str:
    return f"reading scanned pages by OCR: {pages_done} of {pages_total}"


def answer_html(
    text: str, sources: Sequence[NumberedPassage], turn: int, *, cursor: bool = False
) -> str:
    """The answer as safe HTML: model output is never rendered as markup or markdown,
    and each cited number becomes a badge that names its source and links to its card.

    Markers are read by the server's own rules (rag/citations.py): "[1-3]" is 1, 2 and 3.
    """
    by_n = {p.n: p for p in sources}
    parts: list[str] = []
    position = 0
    for marker in CITATION_PATTERN.finditer(text):
        parts.append(escape_html(text[position : marker.start()]))
        parts.extend(
            badge_html(n, by_n.get(n), turn, known=bool(sources)) for n in marker_numbers(marker)
        )
        position = marker.end()
    parts.append(escape_html(text[position:]))
    if cursor:
        parts.append('<span style="opacity: 0.6">▌</span>')
    return f'<div data-pgpt="answer" style="line-height: 1.6">{"".join(parts)}</div>'


def badge_html(n: int, passage: NumberedPassage | None, turn: int, *, known: bool) -> str:
    """A citation badge: a link to its source card, or red when no passage has that number.

    While the answer streams the sources are not ``known`` yet, so no badge is red.
    """
    if passage is None:
        title = "This passage number was not given to the model"
        style = BAD_BADGE_STYLE if known else BADGE_STYLE
        return f'<span style="{style}" title="{title}">{n}</span>'
    title = escape_html(f"{passage.filename}, {pages_label(passage)}")
    return f'<a href="#{card_anchor(turn, n)}" style="{BADGE_STYLE}" title="{title}">{n}</a>'


def source_card_html(
    passage: NumberedPassage, spans: Sequence[tuple[int, int]], anchor: str | None = None
) -> str:
    """One passage as a card: number, file, pages, section, match score, highlighted text."""
    id_attribute = f' id="{anchor}"' if anchor else ""
    details = [f"<b>{escape_html(passage.filename)}</b>", pages_label(passage)]
    if passage.section:
        details.append(f"<i>{escape_html(passage.section)}</i>")
    return (
        f'<div{id_attribute} style="border: 1px solid '
        "rgba(128, 128, 128, 0.35); border-left: 4px solid rgb(28, 131, 225); "
        'border-radius: 0.5rem; padding: 0.6rem 0.8rem; margin: 0.35rem 0">'
        '<div style="display: flex; justify-content: space-between; gap: 0.5rem; '
        'flex-wrap: wrap; margin-bottom: 0.35rem">'
        f'<span><span style="{BADGE_STYLE}">{passage.n}</span> '
        f"{' · '.join(details)}</span>"
        f'<span style="opacity: 0.7; font-size: 0.85em" title="cosine similarity to the '
        f'question">match {passage.score:.2f}</span></div>'
        f'<div style="font-size: 0.92em; line-height: 1.5">'
        f"{marked_html(reflow(passage.text), spans)}</div></div>"
    )
