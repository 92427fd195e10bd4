"""rag objects (hits, answers, documents) -> the API models of core/api_models.py."""

from __future__ import annotations

from core.api_models import (
    Backing,
    ClaimOut,
    DocumentOut,
    Highlight,
    NumberCheckOut,
    NumberedPassage,
    OperandOut,
    PageImageInfo,
    PageText,
    PageUnit,
    Passage,
    QueryResult,
    StageTimings,
    TextSpan,
    TimingsOut,
    VerifiedSentence,
    VerifyResult,
)
from core.settings import AnswerMode
from ingest.page_view import PageExcerpt, PageImage
from rag.answer import Answer, AnswerKind
from rag.number_checks import NumberCheck
from rag.numbers import Operand
from rag.pipeline import IngestTimings
from rag.retrieval import Hit
from rag.sessions import DocumentInfo
from rag.text_check import CheckedText
from rag.verification import Support


def document_out(info: DocumentInfo, timings: IngestTimings | None = None) -> DocumentOut:
    """``timings``: those of the upload that just added it."""
    return DocumentOut(
        document_id=info.document_id,
        filename=info.filename,
        pages=info.pages,
        chunks=info.chunks,
        media_type=info.media_type,
        page_unit=PageUnit(info.page_unit),
        ocr_pages=list(info.ocr_pages),
        size_bytes=info.size_bytes,
        memory_bytes=info.memory_bytes,
        timings=None if timings is None else stage_timings(timings),
    )


def stage_timings(timings: IngestTimings) -> StageTimings:
    t = timings
    return StageTimings(
        parse_ms=round(t.parse_s * 1000, 1),
        ocr_ms=round(t.ocr_s * 1000, 1),
        chunk_ms=round(t.chunk_s * 1000, 1),
        embed_ms=round(t.embed_s * 1000, 1),
        index_ms=round(t.index_s * 1000, 1),
    )


def page_text(excerpt: PageExcerpt) -> PageText:
    span = excerpt.highlight
    return PageText(
        page=excerpt.page,
        text=excerpt.text,
        offset=excerpt.offset,
        page_length=excerpt.page_length,
        highlight=TextSpan(start=span[0], end=span[1]) if span else None,
    )


def page_image_info(image: PageImage) -> PageImageInfo:
    return PageImageInfo(
        page=image.page,
        width=image.width,
        height=image.height,
        highlights=[(b.left, b.top, b.right, b.bottom) for b in image.highlights],
    )


def passage(hit: Hit) -> Passage:
    c = hit.chunk
    return Passage(
        document_id=c.document_id,
        filename=c.filename,
        page=c.page,
        page_end=c.page_end,
        section=c.section,
        char_start=c.char_start,
        char_end=c.char_end,
        text=c.text,
        score=round(hit.score, 4),
        page_unit=PageUnit(c.page_unit),
        ocr=c.ocr,
    )


def highlight(hit: Hit, start: int, end: int) -> Highlight:
    page, page_start = hit.chunk.locate(start)
    end_page, last = hit.chunk.locate(max(start, end - 1))
    return Highlight(
        start=start,
        end=end,
        page=page,
        page_start=page_start,
        page_end=last + 1 if end_page == page else None,
    )


def numbered_passage(n: int, hit: Hit, span: tuple[int, int] | None = None) -> NumberedPassage:
    exact = highlight(hit, *span) if span else None
    return NumberedPassage(n=n, highlight=exact, **passage(hit).model_dump())


def query_result(answer: Answer, standalone_question: str) -> QueryResult:
    t = answer.timings
    spans = {n: (h.start, h.end) for n, h in answer.highlights.items()}
    return QueryResult(
        answer=answer.text,
        standalone_question=standalone_question,
        citations=[numbered_passage(c.n, c.hit, spans.get(c.n)) for c in answer.citations],
        sources=[numbered_passage(n, h, spans.get(n)) for n, h in enumerate(answer.sources, 1)],
        invalid_citations=answer.invalid_citations,
        claims=[
            ClaimOut(
                text=c.text,
                citations=c.citations,
                support=c.support,
                score=c.score,
                shown=answer.kind in (AnswerKind.GENERATED, AnswerKind.QUOTED)
                and (answer.mode is AnswerMode.GENERATE or c.support is Support.SUPPORTED),
                numbers=[number_check(n) for n in c.numbers],
            )
            for c in answer.claims
        ],
        grounded=answer.grounded,
        answer_mode=answer.mode,
        answer_kind=answer.kind,
        removed_claims=answer.removed,
        not_found_reason=answer.not_found_reason,
        timings=TimingsOut(
            retrieval_ms=round(t.retrieval_ms, 1),
            ttft_ms=None if t.ttft_ms is None else round(t.ttft_ms, 1),
            total_ms=round(t.total_ms, 1),
        ),
        model=answer.model,
    )


def operand(o: Operand) -> OperandOut:
    return OperandOut(n=o.n, start=o.start, end=o.end, text=o.text, value=o.value, label=o.label)


def number_check(check: NumberCheck) -> NumberCheckOut:
    derived = check.derivation
    return NumberCheckOut(
        text=check.text,
        backing=Backing(check.backing.value),
        source=operand(check.source) if check.source else None,
        operation=derived.operation if derived else None,
        operands=[operand(o) for o in derived.operands] if derived else [],
        result=derived.result if derived else None,
        derivation=derived.describe() if derived else None,
    )


def verify_result(checked: CheckedText) -> VerifyResult:
    """Each sentence with its label, the passage and span that back it best, its numbers."""
    sentences = []
    for claim in checked.claims:
        best = claim.highlight
        span = highlight(checked.sources[best.n - 1], best.start, best.end) if best else None
        sentences.append(
            VerifiedSentence(
                text=claim.text,
                support=claim.support,
                score=claim.score,
                passage=best.n if best else None,
                highlight=span,
                numbers=[number_check(n) for n in claim.numbers],
            )
        )
    sources = [numbered_passage(n, hit) for n, hit in enumerate(checked.sources, 1)]
    return VerifyResult(sentences=sentences, sources=sources)
