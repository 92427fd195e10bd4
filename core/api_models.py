"""Every request and response body of the REST API, shared by the server and the UI.

Pure pydantic: importing this module pulls in neither FastAPI, torch nor vLLM, so the
web UI can parse what the API sends into the very models the API declares.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from core.settings import AnswerMode


class PageUnit(StrEnum):
    """What a document's page is."""

    PAGE = "page"
    SLIDE = "slide"
    SHEET = "sheet"
    DOCUMENT = "document"  # no fixed pages (Word, HTML): the heading is the place


class Support(StrEnum):
    """How well the passages a claim cites back it."""

    SUPPORTED = "supported"
    WEAK = "weak"
    UNSUPPORTED = "unsupported"


class AnswerKind(StrEnum):
    GENERATED = "generated"  # written by the model
    QUOTED = "quoted"  # sentences quoted verbatim from the passages
    NOT_FOUND = "not_found"  # the not-found reply: no passage relevant to the question
    UNANSWERED = "unanswered"  # passages were found, yet nothing backed can be shown
    # nothing backed to show as the answer: the passages' closest sentences, unverified
    EVIDENCE = "evidence"


class GeneratorStatus(StrEnum):
    READY = "ready"
    STARTING = "starting"
    RESTARTING = "restarting"
    UNAVAILABLE = "unavailable"


class ErrorType(StrEnum):
    """OpenAI's error ``type``, so OpenAI clients classify our errors."""

    INVALID_REQUEST = "invalid_request_error"
    AUTHENTICATION = "authentication_error"
    NOT_FOUND = "not_found_error"
    SERVICE_UNAVAILABLE = "service_unavailable_error"
    INSUFFICIENT_CAPACITY = "insufficient_capacity_error"
    SERVER = "server_error"


class ErrorDetail(BaseModel):
    """Shaped like OpenAI's error object, so OpenAI clients show ``message``."""

    code: str
    message: str
    type: ErrorType = ErrorType.INVALID_REQUEST
    param: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class SessionCreated(BaseModel):
    session_id: str
    expires_at: datetime


class StageTimings(BaseModel):
    """Milliseconds per stage of one upload: reading the file, OCR of the pages without
    text, splitting into passages, embedding them, adding them to the session's index."""

    parse_ms: float
    ocr_ms: float
    chunk_ms: float
    embed_ms: float
    index_ms: float


class DocumentOut(BaseModel):
    document_id: str
    filename: str
    pages: int
    chunks: int
    media_type: str = ""
    page_unit: PageUnit = Field(PageUnit.PAGE, description="What a page of the document is.")
    ocr_pages: list[int] = Field(
        default_factory=list, description="Pages whose text was read by OCR"
    )
    size_bytes: int = Field(description="The uploaded file, held in memory to show its pages.")
    memory_bytes: int = Field(
        description="That file plus its parsed text: what the session's memory caps count."
    )
    timings: StageTimings | None = Field(
        None, description="Time per stage of the upload that added it (in the upload's answer)."
    )


class FileError(BaseModel):
    filename: str
    code: str
    message: str


class UploadResult(BaseModel):
    documents: list[DocumentOut]
    errors: list[FileError]


class UploadProgress(BaseModel):
    """An SSE ``progress`` event of a streamed upload: pages read by OCR so far."""

    filename: str
    file_index: int = Field(description="0-based position of the file in the upload")
    files: int
    pages_done: int
    pages_total: int


class DocumentList(BaseModel):
    documents: list[DocumentOut]


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=4000)
    top_k: int = Field(5, ge=1, le=50)


class Passage(BaseModel):
    document_id: str
    filename: str
    page: int
    page_end: int
    section: str | None
    char_start: int
    char_end: int
    text: str
    score: float
    page_unit: PageUnit = PageUnit.PAGE
    ocr: bool = False  # some of the passage was read by OCR


class SearchResult(BaseModel):
    results: list[Passage]


class AnswerOptions(BaseModel):
    """How a question is answered: the options of a query that a client lets people choose."""

    top_k: int = Field(5, ge=1, le=20, description="Passages retrieved and given to the model.")
    max_tokens: int | None = Field(None, ge=16, le=4096, description="Answer length cap.")
    temperature: float | None = Field(None, ge=0, le=2)
    use_conversation: bool = Field(
        default=True,
        description=(
            "Read the question as a follow-up of this session's conversation (rewritten into "
            "a standalone question for the search, earlier turns in the prompt) and add the "
            "answer to it. False: a question on its own, the conversation untouched."
        ),
    )
    answer_mode: AnswerMode | None = Field(
        None,
        description=(
            "auto (confident quotes, else the model's answer with only its supported "
            "sentences), generate (the model's answer as written) or extract (quotes, no "
            "LLM); default PGPT_ANSWER_MODE."
        ),
    )


class QueryRequest(AnswerOptions):
    question: str = Field(min_length=1, max_length=4000)
    stream: bool = False


class ClientConfig(BaseModel):
    """GET /v1/config: what a client (the web UI) needs of the server's configuration: its
    limits, the formats it reads, and the answer settings a client's controls start at."""

    max_upload_mb: float = Field(description="Largest accepted file, in MB.")
    session_ttl_s: int = Field(description="Idle time after which a session is deleted.")
    accepted_extensions: list[str] = Field(description="With the dot: .pdf, .png, ...")
    accepted_types: str = Field(description="The formats as a sentence, with their extensions.")
    top_k: int = Field(description="PGPT_TOP_K")
    max_tokens: int = Field(description="PGPT_ANSWER_MAX_TOKENS")
    temperature: float = Field(description="PGPT_TEMPERATURE")
    answer_mode: AnswerMode = Field(description="PGPT_ANSWER_MODE")


class Highlight(BaseModel):
    """The exact supporting text: offsets in the passage, and in its page when on one page."""

    start: int
    end: int
    page: int
    page_start: int
    page_end: int | None  # None when the span runs onto the next page


class NumberedPassage(Passage):
    n: int
    highlight: Highlight | None = None


class Backing(StrEnum):
    STANDS = "stands"  # written in the passage, up to formatting and scale
    FOLLOWS = "follows"  # one step of arithmetic from numbers of the passages
    UNBACKED = "unbacked"


class OperandOut(BaseModel):
    """A number of a passage: its cell, the row that names it and its value."""

    n: int = Field(description="The passage, numbered from 1 in the reply's sources.")
    start: int = Field(description="Offsets of the cell in the passage text.")
    end: int
    text: str
    value: float = Field(description="As read, its stated scale applied ('1,577' in millions).")
    label: str = Field(description="The row's name, as far as the passage text says it.")


class NumberCheckOut(BaseModel):
    """How a number of a sentence is backed: the cell it stands in, or its derivation."""

    text: str
    backing: Backing
    source: OperandOut | None = None
    operation: str | None = Field(
        None, description="difference, percent change, share or sum, when it follows."
    )
    operands: list[OperandOut] = Field(default_factory=list)
    result: float | None = None
    derivation: str | None = Field(None, description="The derivation written out.")


class ClaimOut(BaseModel):
    text: str
    citations: list[int]
    support: Support
    score: float = Field(
        description=(
            "A written claim: how well its passage backs it (the verifier's score). A quote: "
            "the estimated probability that the quoted answer holds the answer."
        )
    )
    shown: bool = Field(
        True, description="Part of the shown answer (False: removed as not supported)."
    )
    numbers: list[NumberCheckOut] = Field(
        default_factory=list, description="Each number of the sentence and how it is backed."
    )


class VerifyRequest(BaseModel):
    text: str = Field(min_length=1, max_length=20000, description="Any text to check.")


class VerifiedSentence(BaseModel):
    text: str
    support: Support
    score: float = Field(description="How well its best passage backs it (the verifier's).")
    passage: int | None = Field(None, description="The source that backs it best (its n).")
    highlight: Highlight | None = Field(None, description="The backing span in that passage.")
    numbers: list[NumberCheckOut] = Field(default_factory=list)


class VerifyResult(BaseModel):
    sentences: list[VerifiedSentence]
    sources: list[NumberedPassage] = Field(
        description="The passages retrieved for the text's sentences, numbered from 1."
    )


class TimingsOut(BaseModel):
    retrieval_ms: float
    ttft_ms: float | None
    total_ms: float


class QueryResult(BaseModel):
    answer: str
    standalone_question: str = Field(
        default="",
        description="What was searched: the question rewritten to read without the conversation.",
    )
    citations: list[NumberedPassage]
    sources: list[NumberedPassage]
    invalid_citations: list[int]
    claims: list[ClaimOut]
    grounded: bool
    answer_mode: AnswerMode = Field(AnswerMode.GENERATE, description="The mode asked for.")
    answer_kind: AnswerKind = Field(
        AnswerKind.GENERATED,
        description="generated (by the model), quoted (from the passages), not_found (no "
        "relevant passage), evidence (nothing passed the checks: the answer leads with the "
        "passages' closest sentences, cited, marked as unverified evidence, not an answer; the "
        "claims hold the model's unbacked draft), unanswered (passages found, but no sentence "
        "of theirs to show).",
    )
    removed_claims: int = Field(0, description="The model's sentences removed as unsupported.")
    not_found_reason: str | None = Field(None, description="Why nothing relevant was found.")
    timings: TimingsOut
    model: str = Field(
        description="The language model asked for this answer (its draft may have been "
        "replaced by quotes); empty when none was asked: a confident quote or nothing found."
    )


class TextSpan(BaseModel):
    start: int
    end: int


class PageText(BaseModel):
    """A page of a text document around a span: ``text`` starts at ``offset`` in the page."""

    page: int
    text: str
    offset: int
    page_length: int
    highlight: TextSpan | None = Field(description="The span, as offsets into ``text``.")


class PageImageInfo(BaseModel):
    """Sent in the X-Page-View header of a page image: its size and highlight rectangles."""

    page: int
    width: int
    height: int
    highlights: list[tuple[float, float, float, float]] = Field(
        description="Rectangles (left, top, right, bottom) in image pixels, origin top left."
    )


class UnavailableBody(ErrorBody):
    """503 while the generator is down: the retrieved passages still help."""

    sources: list[NumberedPassage]


class TokenChunk(BaseModel):
    """The data of one SSE ``token`` event of a streamed answer."""

    text: str


class GeneratorHealth(BaseModel):
    status: GeneratorStatus
    model: str | None = None
    context_length: int | None = None
    prefill_tokens_per_s: float | None = Field(
        default=None,
        description="Prompt tokens read per second over the last minute's answers (new prompt "
        "tokens over time to first token); None when no answer asked the model.",
    )
    slow: bool = Field(
        default=False,
        description="The prefill rate is below PGPT_GENERATOR_MIN_PREFILL_TOKENS_PER_S: answers "
        "will take longer than they should (an overloaded or misconfigured machine).",
    )


class EmbedderHealth(BaseModel):
    model: str
    device: str
    dtype: str


class Health(BaseModel):
    status: Literal["ok"]
    generator: GeneratorHealth
    embedder: EmbedderHealth
    sessions: int
    auto_order: str = Field(
        "quotes-first",
        description="What 'auto' mode tries first for the served model (PGPT_AUTO_ORDER): "
        "quotes-first or model-first.",
    )
