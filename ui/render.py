"""Safe HTML and Markdown for the page: answers with citation badges, source cards, labels.

Model output and document text are always escaped: never rendered as markup or math.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Collection, Mapping, Sequence

from core.api_models import DocumentOut, NumberedPassage, PageText, PageUnit, StageTimings
from rag.citations import CITATION_PATTERN, marker_numbers
from ui.client import PageImage, PageView

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
    if unit is PageUnit.DOCUMENT:  # Word, HTML: no fixed pages, the heading is the place
        label = passage.section or "the document"
    else:
        label = f"{unit} {first}" if last <= first else f"{unit}s {first}–{last}"
        if last > first and passage.highlight is not None:
            label += f" (highlight on {unit} {passage.highlight.page})"
        if unit in (PageUnit.SHEET, PageUnit.SLIDE) and passage.section:
            label += f" · {passage.section}"
    if passage.ocr:
        label += " (read by OCR)"
    return label


def size_label(doc: DocumentOut) -> str:
    """'12 pages · 40 passages · 12 pages read by OCR · 2.1 MB in memory' (slides, sheets
    as such): the memory is what the server holds for it (its file and text)."""
    unit = PageUnit.PAGE if doc.page_unit is PageUnit.DOCUMENT else doc.page_unit
    pages, chunks = doc.pages, doc.chunks
    label = f"{pages} {unit}{'s' * (pages != 1)} · {chunks} passage{'s' * (chunks != 1)}"
    if doc.page_unit is PageUnit.DOCUMENT and pages == 1:
        label = f"{chunks} passage{'s' * (chunks != 1)}"
    ocr = len(doc.ocr_pages)
    if ocr:
        label += f" · {ocr} page{'s' * (ocr != 1)} read by OCR"
    held = doc.memory_bytes / 1024**2
    memory = f"{held:.1f} MB" if held >= 0.1 else f"{max(1, round(doc.memory_bytes / 1024))} KB"
    label = f"{label} · {memory} in memory"
    return label if doc.timings is None else f"{label} · {stage_timings_label(doc.timings)}"


def stage_timings_label(timings: StageTimings) -> str:
    """'read in 1.9 s: parse 0.6 · OCR 0 · chunk 0.2 · embed 1.1 · index 0 s', so that a
    slow upload says where its time went."""
    stages = {
        "parse": timings.parse_ms,
        "OCR": timings.ocr_ms,
        "chunk": timings.chunk_ms,
        "embed": timings.embed_ms,
        "index": timings.index_ms,
    }
    parts = " · ".join(f"{name} {ms / 1000:.1f}".removesuffix(".0") for name, ms in stages.items())
    return f"read in {sum(stages.values()) / 1000:.1f} s: {parts} s"


def ocr_progress_label(pages_done: int, pages_total: int) -> str:
    return f"reading scanned pages by OCR: {pages_done} of {pages_total}"


def answer_html(
    text: str,
    sources: Sequence[NumberedPassage],
    turn: int,
    *,
    cursor: bool = False,
    on_pages: Collection[int] = (),
) -> str:
    """The answer as safe HTML: model output is never rendered as markup or markdown,
    and each cited number becomes a badge that names its source and opens it on its page
    (the numbers in ``on_pages``) or else links to its card.

    Markers are read by the server's own rules (rag/citations.py): "[1-3]" is 1, 2 and 3.
    """
    by_n = {p.n: p for p in sources}
    parts: list[str] = []
    position = 0
    for marker in CITATION_PATTERN.finditer(text):
        parts.append(escape_html(text[position : marker.start()]))
        parts.extend(
            badge_html(n, by_n.get(n), turn, known=bool(sources), on_page=n in on_pages)
            for n in marker_numbers(marker)
        )
        position = marker.end()
    parts.append(escape_html(text[position:]))
    if cursor:
        parts.append('<span style="opacity: 0.6">▌</span>')
    return f'<div data-pgpt="answer" style="line-height: 1.6">{"".join(parts)}</div>'


def badge_html(
    n: int, passage: NumberedPassage | None, turn: int, *, known: bool, on_page: bool = False
) -> str:
    """A citation badge: opens its source on its page (``on_page``) or links to its card;
    red when no passage has that number.

    While the answer streams the sources are not ``known`` yet, so no badge is red.
    """
    if passage is None:
        title = "This passage number was not given to the model"
        style = BAD_BADGE_STYLE if known else BADGE_STYLE
        return f'<span style="{style}" title="{title}">{n}</span>'
    title = escape_html(f"{passage.filename}, {pages_label(passage)}")
    target = page_anchor(turn, n) if on_page else card_anchor(turn, n)
    return f'<a href="#{target}" style="{BADGE_STYLE}" title="{title}">{n}</a>'


def source_card_html(
    passage: NumberedPassage,
    spans: Sequence[tuple[int, int]],
    anchor: str | None = None,
    page_link: str | None = None,
) -> str:
    """One passage as a card: number, file, pages, section, match score, highlighted text.

    With ``page_link`` (a page view's anchor) the whole card is a link that opens the page.
    """
    card = _card_html(passage, spans, anchor, shown_on_page=page_link is not None)
    if page_link is None:
        return card
    label = escape_html(f"Show source {passage.n} on its page: {passage.filename}")
    return f'<a class="pgpt-card" href="#{page_link}" aria-label="{label}">{card}</a>'


def _card_html(
    passage: NumberedPassage,
    spans: Sequence[tuple[int, int]],
    anchor: str | None,
    *,
    shown_on_page: bool,
) -> str:
    id_attribute = f' id="{anchor}"' if anchor else ""
    details = [f"<b>{escape_html(passage.filename)}</b>", pages_label(passage)]
    if passage.section:
        details.append(f"<i>{escape_html(passage.section)}</i>")
    if shown_on_page:
        details.append('<span class="pgpt-card-open">show on the page ▸</span>')
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


# --- page views: the cited page beside the answer -------------------------------------

# No script runs in st.html: a badge or card is a link to an anchor inside its page view,
# and CSS shows the view that holds the link's target (the browser scrolls it into view,
# inside the view's own scroll box too). Streamlit stacks the columns on narrow screens.
PAGE_VIEW_CSS = """<style>
.pgpt-page { display: none; }
.pgpt-page:has(:target) { display: block; }
.pgpt-pages:has(:target) .pgpt-pages-hint { display: none; }
.pgpt-pages-hint { opacity: 0.7; font-size: 0.9em; }
.pgpt-page-head { display: flex; justify-content: space-between; gap: 0.5rem;
  margin-bottom: 0.35rem; font-size: 0.92em; }
.pgpt-page-scroll { max-height: 78vh; overflow: auto; border-radius: 0.5rem;
  border: 1px solid rgba(128, 128, 128, 0.35); }
.pgpt-page-scroll:focus-visible { outline: 2px solid rgb(28, 131, 225); }
.pgpt-page-canvas { position: relative; }
.pgpt-page-canvas img { width: 100%; display: block; }
.pgpt-mark { position: absolute; pointer-events: none; scroll-margin: 30vh 0; }
.pgpt-page-text { padding: 0.6rem 0.8rem; line-height: 1.5; font-size: 0.92em; }
.pgpt-page-text mark { scroll-margin: 30vh 0; }
a.pgpt-card { display: block; color: inherit; text-decoration: none; }
a.pgpt-card:hover > div, a.pgpt-card:focus-visible > div {
  box-shadow: 0 0 0 2px rgba(28, 131, 225, 0.6); }
.pgpt-card-open { color: rgb(28, 110, 200); }
</style>"""


def page_anchor(turn: int, n: int) -> str:
    return f"pgpt-page-{turn}-{n}"


def page_span(passage: NumberedPassage) -> tuple[int, tuple[int, int]]:
    """The page to show for a passage and the span on it (page offsets): the exact words
    that back the answer when known, else the passage from its first character (the server
    clips a span at the page's end)."""
    exact = passage.highlight
    if exact is not None:
        length = exact.end - exact.start
        end = exact.page_end if exact.page_end is not None else exact.page_start + length
        return exact.page, (exact.page_start, end)
    return passage.page, (passage.char_start, passage.char_start + len(passage.text))


def pages_html(
    turn: int, passages: Sequence[NumberedPassage], views: Mapping[int, PageView | str]
) -> str:
    """Every passage's page view (hidden until a badge or card opens one), and a hint."""
    panels = [
        page_view_html(turn, passage, views[passage.n])
        for passage in passages
        if passage.n in views
    ]
    hint = (
        '<p class="pgpt-pages-hint">Select a source card or a numbered badge to see the '
        "passage where it stands on its page.</p>"
    )
    return f'<div class="pgpt-pages" data-pgpt="pages">{hint}{"".join(panels)}</div>'


def page_view_html(turn: int, passage: NumberedPassage, view: PageView | str) -> str:
    """One passage on its page: the PNG with invisible anchors over the highlight, the text
    around the span, or why the page could not be shown."""
    anchor = page_anchor(turn, passage.n)
    page = page_span(passage)[0]
    title = f"{passage.filename}, page {page}"
    head = (
        f'<div class="pgpt-page-head"><span><span style="{BADGE_STYLE}">{passage.n}</span> '
        f"<b>{escape_html(passage.filename)}</b> · page {page}</span>"
        f'<a href="#pgpt-closed-{turn}">Close</a></div>'
    )
    if isinstance(view, PageImage):
        body = _page_image_html(view, anchor, title)
    elif isinstance(view, PageText):
        body = _page_text_html(view, anchor)
    else:
        body = f'<div class="pgpt-page-text" id="{anchor}">{escape_html(view)}</div>'
    return (
        f'<div class="pgpt-page" data-pgpt="page-view" data-n="{passage.n}">{head}'
        f'<div class="pgpt-page-scroll" tabindex="0" role="region" '
        f'aria-label="{escape_html(title)}">{body}</div></div>'
    )


def _page_image_html(view: PageImage, anchor: str, title: str) -> str:
    info = view.info
    target = f' id="{anchor}"'  # on the first rectangle: the browser scrolls to it
    marks = [
        f'<span class="pgpt-mark"{target if i == 0 else ""} style="'
        f"left: {100 * left / info.width:.3f}%; top: {100 * top / info.height:.3f}%; "
        f"width: {100 * (right - left) / info.width:.3f}%; "
        f'height: {100 * (bottom - top) / info.height:.3f}%"></span>'
        for i, (left, top, right, bottom) in enumerate(info.highlights)
    ]
    if not marks:  # nothing highlighted: open at the top of the page
        marks = [f'<span class="pgpt-mark" id="{anchor}" style="left: 0; top: 0"></span>']
    alt = escape_html(f"{title}, the cited words highlighted" if info.highlights else title)
    source = "data:image/png;base64," + base64.b64encode(view.png).decode("ascii")
    return f'<div class="pgpt-page-canvas"><img src="{source}" alt="{alt}">{"".join(marks)}</div>'


def _page_text_html(view: PageText, anchor: str) -> str:
    text, span = view.text, view.highlight
    before = "…" if view.offset > 0 else ""
    after = "…" if view.offset + len(text) < view.page_length else ""
    if span is None:
        body = f'<span id="{anchor}"></span>{escape_html(text)}'
    else:
        body = (
            f"{escape_html(text[: span.start])}"
            f'<mark id="{anchor}" style="{MARK_STYLE}">{escape_html(text[span.start : span.end])}'
            f"</mark>{escape_html(text[span.end :])}"
        )
    return f'<div class="pgpt-page-text">{before}{body}{after}</div>'
