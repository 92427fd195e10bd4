"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from rag.answer import Answer
from rag.retrieval import Hit
from rag.sessions import DocumentInfo


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

    @classmethod
    def of(cls, info: DocumentInfo) -> DocumentOut:
        return cls(
            document_id=info.document_id,
            filename=info.filename,
            pages=info.pages,
            chunks=info.chunks,
        )


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

    @classmethod
    def of(cls, hit: Hit) -> Passage:
        c = hit.chunk
        return cls(
            document_id=c.document_id,
            filename=c.filename,
            page=c.page,
            page_end=c.page_end,
            section=c.section,
            char_start=c.char_start,
            char_end=c.char_end,
            text=c.text,
            score=round(hit.score, 4),
        )


class SearchResult(BaseModel):
    results: list[Passage]


class QueryRequest(BaseModel):
    question: str = Field(min_length=1, max_length=4000)
    top_k: int = Field(5, ge=1, le=20)
    stream: bool = False
    max_tokens: int | None = Field(None, ge=16, le=4096, description="Answer length cap.")
    temperature: float | None = Field(None, ge=0, le=2)


class Highlight(BaseModel):
    """The exact supporting text: offsets in the passage, and in its page when on one page."""

    start: int
    end: int
    page: int
    page_start: int
    page_end: int | None  # None when the span runs onto the next page

    @classmethod
    def of(cls, hit: Hit, start: int, end: int) -> Highlight:
        page, page_start = hit.chunk.locate(start)
        end_page, last = hit.chunk.locate(max(start, end - 1))
        return cls(
            start=start,
            end=end,
            page=page,
            page_start=page_start,
            page_end=last + 1 if end_page == page else None,
        )


class NumberedPassage(Passage):
    n: int
    highlight: Highlight | None = None

    @classmethod
    def numbered(cls, n: int, hit: Hit, span: tuple[int, int] | None = None) -> NumberedPassage:
        highlight = Highlight.of(hit, *span) if span else None
        return cls(n=n, highlight=highlight, **Passage.of(hit).model_dump())


class ClaimOut(BaseModel):
    text: str
    citations: list[int]
    support: str = Field(description="supported, weak or unsupported")
    score: float


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
    timings: TimingsOut
    model: str

    @classmethod
    def of(cls, answer: Answer) -> QueryResult:
        t = answer.timings
        spans = {n: (h.start, h.end) for n, h in answer.highlights.items()}
        return cls(
            answer=answer.text,
            citations=[
                NumberedPassage.numbered(c.n, c.hit, spans.get(c.n)) for c in answer.citations
            ],
            sources=[
                NumberedPassage.numbered(n, h, spans.get(n))
                for n, h in enumerate(answer.sources, 1)
            ],
            invalid_citations=answer.invalid_citations,
            claims=[
                ClaimOut(text=c.text, citations=c.citations, support=c.support, score=c.score)
                for c in answer.claims
            ],
            grounded=answer.grounded,
            timings=TimingsOut(
                retrieval_ms=round(t.retrieval_ms, 1),
                ttft_ms=None if t.ttft_ms is None else round(t.ttft_ms, 1),
                total_ms=round(t.total_ms, 1),
            ),
            model=answer.model,
        )


class UnavailableBody(ErrorBody):
    """503 while the generator is down: the retrieved passages still help."""

    sources: list[NumberedPassage]
