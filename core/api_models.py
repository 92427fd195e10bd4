"""Every request and response body of the REST API, shared by the server and the UI.

Pure pydantic: importing this module pulls in neither FastAPI, torch nor vLLM, so the
web UI can parse what the API sends into the very models the API declares.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from core.settings import AnswerMode


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class SessionCreated(BaseModel):
    session_id: str
    expires_at: datetime


class DocumentOut(BaseModel):
    document_id: str
    filename: str
    pages: int
    chunks: int


class FileError(BaseModel):
    filename: str
    code: str
    message: str


class UploadResult(BaseModel):
    documents: list[DocumentOut]
    errors: list[FileError]


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


class SearchResult(BaseModel):
    results: list[Passage]


class QueryRequest(BaseModel):
    question: str = Field(min_length=1, max_length=4000)
    top_k: int = Field(5, ge=1, le=20)
    stream: bool = False
    max_tokens: int | None = Field(None, ge=16, le=4096, description="Answer length cap.")
    temperature: float | None = Field(None, ge=0, le=2)
    answer_mode: AnswerMode | None = Field(
        None,
        description=(
            "auto (generate, show only supported sentences, else quotes), generate (the "
            "model's answer as written) or extract (quotes, no LLM); default PGPT_ANSWER_MODE."
        ),
    )


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


class ClaimOut(BaseModel):
    text: str
    citations: list[int]
    support: str = Field(description="supported, weak or unsupported")
    score: float
    shown: bool = Field(
        True, description="Part of the shown answer (False: removed as not supported)."
    )


class TimingsOut(BaseModel):
    retrieval_ms: float
    ttft_ms: float | None
    total_ms: float


class QueryResult(BaseModel):
    answer: str
    citations: list[NumberedPassage]
    sources: list[NumberedPassage]
    invalid_citations: list[int]
    claims: list[ClaimOut]
    grounded: bool
    answer_mode: AnswerMode = Field(AnswerMode.GENERATE, description="The mode asked for.")
    answer_kind: str = Field(
        "generated", description="generated (by the model), quoted (from the passages), not_found."
    )
    removed_claims: int = Field(0, description="The model's sentences removed as unsupported.")
    not_found_reason: str | None = Field(None, description="Why nothing relevant was found.")
    timings: TimingsOut
    model: str


class UnavailableBody(ErrorBody):
    """503 while the generator is down: the retrieved passages still help."""

    sources: list[NumberedPassage]


class TokenChunk(BaseModel):
    """The data of one SSE ``token`` event of a streamed answer."""

    text: str


class GeneratorHealth(BaseModel):
    status: str = Field(description="ready or unavailable")
    model: str | None = None
    context_length: int | None = None


class EmbedderHealth(BaseModel):
    model: str
    device: str
    dtype: str


class Health(BaseModel):
    status: Literal["ok"]
    generator: GeneratorHealth
    embedder: EmbedderHealth
    sessions: int
