"""Our pipeline's variants for the benchmarks, which the shipped code does not offer.

Retrieval: settings overrides by name, shared by financebench_bench and covidqa_bench, so
both sets measure the same changes. Answers: ``model_first``, the earlier ``auto``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from core.settings import Settings
from rag.answer import AnswerEngine, AnswerEvent, AnswerRequest, DoneEvent
from rag.answer_modes import backed_sentences
from rag.embedding import Embedder
from rag.retrieval import Retriever, make_retriever


@dataclass(frozen=True, slots=True)
class Variant:
    """Our pipeline under settings overrides; ``lexical_analyzer`` picks the BM25 tokenizer."""

    description: str
    overrides: dict[str, object] = field(default_factory=dict)
    lexical_analyzer: str | None = None


# Ablations: "ours" is today's defaults; each "-x" variant turns one change off;
# "before" is every change off (the pipeline as the issue measured it).
BEFORE: dict[str, object] = {
    "context_headers": False,
    "pdf_text_mode": "plain",
    "query_cleaning": False,
    "measure_terms": False,
    "page_diversity": False,
    "lexical_weight": 1.0,
    "lexical_k1": 1.5,
    "retrieval_candidates": 0,
}
VARIANTS: dict[str, Variant] = {
    "ours": Variant("today's defaults"),
    "before": Variant(
        "every change of issue #11 off (the pipeline the issue measured)",
        BEFORE,
        lexical_analyzer="words",
    ),
    "-headers": Variant("no document context header", {"context_headers": False}),
    "-layout": Variant("pypdf plain text mode on every page", {"pdf_text_mode": "plain"}),
    "pypdf-auto": Variant(
        "pypdf's text, its layout mode on pages that look like tables (the default before PDFium)",
        {"pdf_text_mode": "auto"},
    ),
    "-cleaning": Variant("questions searched as asked", {"query_cleaning": False}),
    "-tokenizer": Variant("bm25s' default word tokenizer", lexical_analyzer="words"),
    "-diversity": Variant("pages may hold several slots", {"page_diversity": False}),
    "-fusion": Variant(
        "plain RRF (weights 1:1) over 3 x top-k candidates",
        {"lexical_weight": 1.0, "retrieval_candidates": 0},
    ),
    "-measures": Variant(
        "financial measures searched as named (no statement lines)", {"measure_terms": False}
    ),
    "dense": Variant("no BM25 (dense only)", {"hybrid": False}),
    "bm25x0.5": Variant("BM25 weighted 0.5 against dense in the fusion", {"lexical_weight": 0.5}),
    "bm25x2": Variant("BM25 weighted 2 against dense in the fusion", {"lexical_weight": 2.0}),
    "bm25k1=1.5": Variant("BM25 k1 1.5 (bm25s' default)", {"lexical_k1": 1.5}),
    "pool50": Variant("50 candidates from each ranking", {"retrieval_candidates": 50}),
    "pool100": Variant("100 candidates from each ranking", {"retrieval_candidates": 100}),
}


def variant_retriever(settings: Settings, embedder: Embedder, analyzer: str | None) -> Retriever:
    """The retriever of ``settings`` (a variant's overrides applied), with another BM25
    tokenizer if ``analyzer`` names one (the shipped code always uses the default)."""
    retriever = make_retriever(settings, embedder)
    if analyzer is not None:
        retriever.lexical_analyzer = analyzer
    return retriever


async def model_first(engine: AnswerEngine, request: AnswerRequest) -> AsyncIterator[AnswerEvent]:
    """``auto`` as it was before 4 Dec: the model first, quotes only when nothing it wrote is
    backed (answer_bench's "auto, model first")."""
    not_found = engine.not_found(request)
    if not_found is not None:
        yield DoneEvent(not_found)
        return
    async for event in backed_sentences(engine, request, None):
        yield event
