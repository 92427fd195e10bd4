"""What the web UI (app.py) needs besides Streamlit: the REST API client and text helpers.

Everything here talks HTTP or formats text; retrieval and answering happen behind the API.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NotRequired, TypedDict, cast

import httpx

# Parsing and embedding a long PDF on a CPU can take minutes; answers stream for as long.
UPLOAD_TIMEOUT = httpx.Timeout(10.0, read=900.0, write=300.0)
ANSWER_TIMEOUT = httpx.Timeout(10.0, read=600.0)
QUICK_TIMEOUT = httpx.Timeout(10.0)
HEALTH_TIMEOUT = httpx.Timeout(3.0)


# --- what the API returns ------------------------------------------------------------


class Document(TypedDict):
    document_id: str
    filename: str
    pages: int
    chunks: int


class FileError(TypedDict):
    filename: str
    code: str
    message: str


class Highlight(TypedDict):
    """The exact span of a passage that backs the answer (offsets into the passage text)."""

    start: int
    end: int
    page: int


class Claim(TypedDict):
    """One sentence of the answer and how well the passages it cites back it."""

    text: str
    citations: list[int]
    support: str  # "supported" | "weak" | "unsupported"
    score: float


class Passage(TypedDict):
    n: int
    document_id: str
    filename: str
    page: int
    page_end: int
    section: str | None
    char_start: int
    char_end: int
    text: str
    score: float
    highlight: NotRequired[Highlight | None]


class QueryResult(TypedDict):
    answer: str
    citations: list[Passage]
    sources: list[Passage]
    invalid_citations: list[int]
    claims: NotRequired[list[Claim]]
    grounded: NotRequired[bool]
    timings: dict[str, float | None]
    model: str


@dataclass(frozen=True, slots=True)
class SessionInfo:
    session_id: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class UploadOutcome:
    """What happened to one file: the document it became, or why it was refused."""

    filename: str
    document: Document | None = None
    error: str | None = None
    code: str | None = None


@dataclass(frozen=True, slots=True)
class Token:
    text: str


@dataclass(frozen=True, slots=True)
class Done:
    result: QueryResult


@dataclass(frozen=True, slots=True)
class Failed:
    """The answer could not be generated; ``sources`` are the passages found anyway."""

    code: str
    message: str
    sources: list[Passage]


AnswerEvent = Token | Done | Failed


# --- what the page remembers for one browser session ---------------------------------


@dataclass
class Turn:
    """One question and what came back; ``finished`` stays False if the run was stopped."""

    question: str
    answer: str = ""
    result: QueryResult | None = None
    sources: list[Passage] = field(default_factory=list)  # when there is no result
    error: str | None = None
    error_code: str | None = None
    finished: bool = False


@dataclass
class Notice:
    kind: str  # "success" | "warning"
    text: str


@dataclass
class UiState:
    session: SessionInfo | None = None
    ttl_s: float = 0.0
    expires_at: datetime | None = None
    documents: list[Document] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    upload_report: list[UploadOutcome] = field(default_factory=list)
    uploader_generation: int = 0
    handled_file_ids: set[str] = field(default_factory=set)
    notice: Notice | None = None
    health: dict[str, Any] | None = None
    health_checked_at: float = 0.0

    def clear(self, notice: Notice | None = None) -> None:
        """Forget the session, documents and chat; the next uploader starts empty."""
        generation = self.uploader_generation + 1
        self.__dict__.update(UiState().__dict__)
        self.uploader_generation = generation
        self.notice = notice


# --- errors ------------------------------------------------------------------------


class ApiError(Exception):
    """The API answered with an error body ``{"error": {"code", "message"}}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class SessionExpiredError(ApiError):
    """The server no longer knows the session (expired, or the server restarted)."""


class ApiUnreachableError(Exception):
    def __init__(self, base_url: str, reason: str) -> None:
        super().__init__(
            f"Cannot reach the PrivateGPT++ API at {base_url} ({reason}). "
            "Start it with `pgpt serve`, or everything with `pgpt up`."
        )
        self.message = str(self)


def api_error(response: httpx.Response) -> ApiError:
    try:
        detail = response.json()["error"]
        code, message = str(detail["code"]), str(detail["message"])
    except (ValueError, KeyError, TypeError):
        code, message = "http_error", f"The API answered {response.status_code}."
    cls = SessionExpiredError if response.status_code == 404 and "session" in code else ApiError
    return cls(response.status_code, code, message)


# --- the client ------------------------------------------------------------------------


class ApiClient:
    """A small synchronous client of the PrivateGPT++ REST API."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=QUICK_TIMEOUT, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiUnreachableError(self.base_url, type(exc).__name__) from None
        if response.status_code >= 400:
            raise api_error(response)
        return response

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = self._request("GET", "/healthz", timeout=HEALTH_TIMEOUT).json()
        return body

    def create_session(self) -> SessionInfo:
        body = self._request("POST", "/v1/sessions").json()
        return SessionInfo(body["session_id"], datetime.fromisoformat(body["expires_at"]))

    def delete_session(self, session_id: str) -> None:
        self._request("DELETE", f"/v1/sessions/{session_id}")

    def documents(self, session_id: str) -> list[Document]:
        body = self._request("GET", f"/v1/sessions/{session_id}/documents").json()
        return cast(list[Document], body["documents"])

    def remove_document(self, session_id: str, document_id: str) -> None:
        self._request("DELETE", f"/v1/sessions/{session_id}/documents/{document_id}")

    def upload(
        self,
        session_id: str,
        filename: str,
        data: bytes,
        *,
        password: str | None = None,
        media_type: str = "application/octet-stream",
    ) -> UploadOutcome:
        """Send one file; a refused file is an outcome with its error, not an exception.

        Raises SessionExpiredError and ApiUnreachableError, which concern every file.
        """
        try:
            response = self._request(
                "POST",
                f"/v1/sessions/{session_id}/documents",
                files=[("files", (filename, data, media_type))],
                data={"password": password} if password else None,
                timeout=UPLOAD_TIMEOUT,
            )
        except SessionExpiredError:
            raise
        except ApiError as exc:  # e.g. 413 too large, 415 unsupported type
            return UploadOutcome(filename, error=exc.message, code=exc.code)
        body = response.json()
        if body["documents"]:
            return UploadOutcome(filename, document=cast(Document, body["documents"][0]))
        if body["errors"]:
            error = cast(FileError, body["errors"][0])
            return UploadOutcome(filename, error=error["message"], code=error["code"])
        return UploadOutcome(filename, error="The server returned no result for this file.")

    def ask(
        self,
        session_id: str,
        question: str,
        *,
        top_k: int,
        max_tokens: int,
        temperature: float,
    ) -> Iterator[AnswerEvent]:
        """Stream the answer: Token events, then one Done (or Failed, with the passages found).

        Raises SessionExpiredError, ApiError and ApiUnreachableError before the first event.
        """
        payload = {
            "question": question,
            "top_k": top_k,
            "stream": True,
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        path = f"/v1/sessions/{session_id}/query"
        try:
            with self._http.stream("POST", path, json=payload, timeout=ANSWER_TIMEOUT) as response:
                if response.status_code == 503:
                    response.read()
                    body = response.json()
                    error = api_error(response)
                    yield Failed(error.code, error.message, body.get("sources", []))
                    return
                if response.status_code >= 400:
                    response.read()
                    raise api_error(response)
                for event, data in parse_sse(response.iter_lines()):
                    if event == "token":
                        yield Token(json.loads(data)["text"])
                    elif event == "done":
                        yield Done(cast(QueryResult, json.loads(data)))
                    elif event == "error":
                        detail = json.loads(data)["error"]
                        yield Failed(detail["code"], detail["message"], [])
        except httpx.TransportError as exc:
            raise ApiUnreachableError(self.base_url, type(exc).__name__) from None


def parse_sse(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(event, data) pairs of a text/event-stream; multi-line data is joined with newlines."""
    event, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "message", list[str]()
        elif line.startswith(":"):
            continue  # a comment (keep-alive)
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
    if data:
        yield event, "\n".join(data)


# --- text helpers ------------------------------------------------------------------

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
CITATION_MARK = re.compile(r"\[(\d+(?:\s*[,\-–]\s*\d+)*)\]")


def highlight_terms(*texts: str) -> set[str]:
    """Lower-cased content words of the texts (no stopwords, citation numbers or 1-letter words)."""
    terms: set[str] = set()
    for text in texts:
        for word in WORD.findall(CITATION_MARK.sub(" ", text)):
            lowered = word.lower()
            if lowered not in STOPWORDS and (len(lowered) > 1 or lowered.isdigit()):
                terms.add(lowered)
    return terms


def passage_highlights(passage: Passage, question: str, answer: str) -> list[tuple[int, int]]:
    """Character spans of ``passage["text"]`` to highlight on its source card.

    The exact span that backs the answer when the API found one; otherwise the words of
    the question and the answer that occur in the passage.
    """
    exact = passage.get("highlight")
    if exact is not None and 0 <= exact["start"] < exact["end"] <= len(passage["text"]):
        return [(exact["start"], exact["end"])]
    terms = highlight_terms(question, answer)
    return [m.span() for m in WORD.finditer(passage["text"]) if m.group().lower() in terms]


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


def card_anchor(turn: int, n: int) -> str:
    return f"pgpt-source-{turn}-{n}"


def pages_label(passage: Passage) -> str:
    first, last = passage["page"], passage["page_end"]
    label = f"page {first}" if last <= first else f"pages {first}–{last}"
    exact = passage.get("highlight")
    if last > first and exact is not None:
        label += f" (highlight on page {exact['page']})"
    return label


def answer_html(text: str, sources: Sequence[Passage], turn: int, *, cursor: bool = False) -> str:
    """The answer as safe HTML: model output is never rendered as markup or markdown,
    and each [n] becomes a badge that names its source and links to its card."""
    by_n = {p["n"]: p for p in sources}
    parts: list[str] = []
    position = 0
    for match in CITATION_MARK.finditer(text):
        parts.append(escape_html(text[position : match.start()]))
        numbers = [int(x) for x in re.findall(r"\d+", match.group(1))]
        for n in numbers:
            passage = by_n.get(n)
            if passage is None:
                title = "This passage number was not given to the model"
                style = BAD_BADGE_STYLE if sources else BADGE_STYLE
                parts.append(f'<span style="{style}" title="{title}">{n}</span>')
            else:
                title = escape_html(f"{passage['filename']}, {pages_label(passage)}")
                href = f"#{card_anchor(turn, n)}"
                parts.append(f'<a href="{href}" style="{BADGE_STYLE}" title="{title}">{n}</a>')
        position = match.end()
    parts.append(escape_html(text[position:]))
    if cursor:
        parts.append('<span style="opacity: 0.6">▌</span>')
    return f'<div data-pgpt="answer" style="line-height: 1.6">{"".join(parts)}</div>'


def source_card_html(
    passage: Passage, spans: Sequence[tuple[int, int]], anchor: str | None = None
) -> str:
    """One passage as a card: number, file, pages, section, match score, highlighted text."""
    id_attribute = f' id="{anchor}"' if anchor else ""
    section = passage.get("section")
    details = [f"<b>{escape_html(passage['filename'])}</b>", pages_label(passage)]
    if section:
        details.append(f"<i>{escape_html(section)}</i>")
    return (
        f'<div{id_attribute} style="border: 1px solid '
        "rgba(128, 128, 128, 0.35); border-left: 4px solid rgb(28, 131, 225); "
        'border-radius: 0.5rem; padding: 0.6rem 0.8rem; margin: 0.35rem 0">'
        '<div style="display: flex; justify-content: space-between; gap: 0.5rem; '
        'flex-wrap: wrap; margin-bottom: 0.35rem">'
        f'<span><span style="{BADGE_STYLE}">{passage["n"]}</span> '
        f"{' · '.join(details)}</span>"
        f'<span style="opacity: 0.7; font-size: 0.85em" title="cosine similarity to the '
        f'question">match {passage["score"]:.2f}</span></div>'
        f'<div style="font-size: 0.92em; line-height: 1.5">'
        f"{marked_html(reflow(passage['text']), spans)}</div></div>"
    )
