"""Retrieval quality on COVID-QA: hit@1, hit@5 and MRR@10 per method, in one run.

Every method indexes all articles (one session, one store), then answers every
question; a hit is a retrieved passage that contains an answer text (compared
case- and whitespace-insensitively, never by the stored character offsets).

To add a method, write a class with ``name``, ``description``, ``index(articles)``
and ``search(question, k)`` (see ``Method``) and register a factory in ``METHODS``.

    .venv/bin/python -m benchmarks.covidqa_bench --output docs/benchmarks/retrieval.md
    .venv/bin/python -m benchmarks.covidqa_bench --quick --methods ours,langchain
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from benchmarks import langchain_baseline
from benchmarks.common import (
    Article,
    Question,
    Stopwatch,
    command_line,
    describe_machine,
    first_hit_rank,
    load_covidqa,
    markdown_table,
    median,
    normalize,
    progress,
    write_report,
)
from benchmarks.embedding_cache import CachingEmbedder
from benchmarks.results import retrieval_figures, write_results
from benchmarks.variants import VARIANTS, variant_retriever
from core.settings import Settings, load_settings
from ingest.loader import load_document
from rag.embedding import (
    Embedder,
    configure_threads,
    make_embedder,
    resolve_backend,
    resolve_batch_size,
)
from rag.pipeline import Ingestor, make_chunker
from rag.retrieval import Retriever
from rag.sessions import Session
from serving.wiring import make_store

QUICK_ARTICLES = 1
BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 20240423
CALIBRATION_ROUNDS = 8
CALIBRATION_TOLERANCE = 0.01  # matched chunk length within 1% of ours


@dataclass(frozen=True, slots=True)
class IndexReport:
    chunk_texts: list[str]
    seconds: float  # wall time to index every article, embedding included


class Method(Protocol):
    name: str
    description: str

    def index(self, articles: Sequence[Article]) -> IndexReport:
        """Index every article; called once, before any search."""
        ...

    def search(self, question: str, k: int) -> list[str]:
        """The texts of the best ``k`` passages, best first."""
        ...


class Resources:
    """Expensive things built once and shared by the methods that need them."""

    def __init__(self, settings: Settings, *, use_cache: bool = False) -> None:
        self.settings = settings
        self.use_cache = use_cache
        self._embedder: Embedder | None = None
        self._caching: CachingEmbedder | None = None
        self._langchain_embeddings: Any = None
        self._our_indexes: dict[tuple[object, ...], tuple[Session, IndexReport]] = {}

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = make_embedder(self.settings)
        return self._embedder

    @property
    def search_embedder(self) -> Embedder:
        """What our sessions and retrievers embed with: the benchmark's embedding cache
        in front of the embedder with --cache (benchmarks/embedding_cache.py)."""
        if not self.use_cache:
            return self.embedder
        if self._caching is None:
            self._caching = CachingEmbedder.ours(self.embedder, resolve_batch_size(self.settings))
        return self._caching

    @property
    def langchain_embeddings(self) -> Any:
        if self._langchain_embeddings is None:
            self._langchain_embeddings = langchain_baseline.make_embeddings()
        return self._langchain_embeddings

    def our_session(
        self, articles: Sequence[Article], settings: Settings | None = None
    ) -> tuple[Session, IndexReport]:
        """All articles ingested into one session, through the real loader, once per run
        and ingest configuration.

        Methods that differ only in how they search (e.g. hybrid, reranked) share it.
        """
        settings = settings or self.settings
        key = (
            settings.context_headers,
            settings.chunk_size_tokens,
            settings.chunk_overlap_tokens,
        )
        if key not in self._our_indexes:
            embedder = self.search_embedder
            store = make_store(settings, embedder)
            ingestor = Ingestor(settings, embedder)
            session = store.create()
            clock = Stopwatch()
            for number, article in enumerate(articles, start=1):
                ingestor.ingest(session, article.text.encode("utf-8"), article.filename)
                if number % 10 == 0 or number == len(articles):
                    progress(
                        f"  [ours] {number}/{len(articles)} articles, "
                        f"{session.chunk_count} chunks, {clock.elapsed():.0f} s"
                    )
            texts = [chunk.text for chunk in session.chunks.values()]
            seconds = clock.elapsed()
            if isinstance(embedder, CachingEmbedder):
                embedder.save()
            self._our_indexes[key] = session, IndexReport(texts, seconds)
        return self._our_indexes[key]

    def our_chunk_texts(self, articles: Sequence[Article]) -> list[str]:
        """Our chunks of the articles without embedding them (for matching chunk sizes)."""
        if self._our_indexes:
            return next(iter(self._our_indexes.values()))[1].chunk_texts
        chunker = make_chunker(self.settings, self.embedder)
        texts: list[str] = []
        for article in articles:
            document = load_document(
                article.text.encode("utf-8"),
                article.filename,
                max_bytes=self.settings.max_upload_bytes,
                max_pages=self.settings.max_pages,
                timeout_s=self.settings.parse_timeout_s,
            )
            texts += [chunk.text for chunk in chunker.split(document, "calibration")]
        return texts


class OursDense:
    """Our pipeline: loader -> token chunker -> bf16 embedder -> FAISS -> Retriever."""

    def __init__(
        self,
        resources: Resources,
        *,
        name: str = "ours",
        description: str = "",
        make_retriever: Callable[[Resources], Retriever] | None = None,
        settings: Settings | None = None,
    ) -> None:
        settings = settings or resources.settings
        self._settings = settings
        self.name = name
        self.description = description or (
            f"{settings.chunk_size_tokens}-token chunks, {settings.chunk_overlap_tokens} overlap; "
            f"{resources.embedder.dtype} embeddings; dense top-k, near-duplicates collapsed"
        )
        self._resources = resources
        self._make_retriever = make_retriever or (
            lambda r: Retriever(r.search_embedder, dedup_threshold=r.settings.dedup_threshold)
        )
        self._session: Session | None = None
        self._retriever: Retriever | None = None

    def index(self, articles: Sequence[Article]) -> IndexReport:
        self._session, report = self._resources.our_session(articles, self._settings)
        self._retriever = self._make_retriever(self._resources)
        return report

    def search(self, question: str, k: int) -> list[str]:
        if self._session is None or self._retriever is None:
            raise RuntimeError("index() first")
        return [hit.chunk.text for hit in self._retriever.search(self._session, question, top_k=k)]


class LangChainFaiss:
    """The standard LangChain pipeline: character splitter -> HuggingFaceEmbeddings -> FAISS."""

    def __init__(
        self,
        resources: Resources,
        *,
        name: str,
        chunk_size: int,
        chunk_overlap: int,
        description: str = "",
    ) -> None:
        self.name = name
        self.description = description or (
            f"RecursiveCharacterTextSplitter({chunk_size}, {chunk_overlap}) characters; "
            "float32 embeddings; FAISS similarity_search"
        )
        self._resources = resources
        self._splitter = langchain_baseline.make_splitter(chunk_size, chunk_overlap)
        self._store: Any = None

    def index(self, articles: Sequence[Article]) -> IndexReport:
        from langchain_core.documents import Document

        embeddings = self._resources.langchain_embeddings
        clock = Stopwatch()
        documents = [
            Document(page_content=a.text, metadata={"source": a.filename}) for a in articles
        ]
        chunks = self._splitter.split_documents(documents)
        progress(f"  [{self.name}] {len(chunks)} chunks to embed")

        def report(done: int) -> None:
            progress(f"  [{self.name}] embedded {done}/{len(chunks)}, {clock.elapsed():.0f} s")

        vectors = langchain_baseline.embed_documents(
            embeddings, [c.page_content for c in chunks], on_progress=report
        )
        self._store = langchain_baseline.build_faiss(chunks, vectors, embeddings)
        return IndexReport([c.page_content for c in chunks], clock.elapsed())

    def search(self, question: str, k: int) -> list[str]:
        if self._store is None:
            raise RuntimeError("index() first")
        return [document.page_content for document in self._store.similarity_search(question, k=k)]


def matched_langchain(resources: Resources, articles: Sequence[Article]) -> Method:
    """LangChain with its chunk size (in characters) tuned so chunks average ours."""
    settings = resources.settings
    ours = resources.our_chunk_texts(articles)
    target = sum(map(len, ours)) / len(ours)
    overlap_ratio = settings.chunk_overlap_tokens / settings.chunk_size_tokens
    size = calibrate_chunk_size([a.text for a in articles], target, overlap_ratio)
    overlap = round(size * overlap_ratio)
    return LangChainFaiss(
        resources,
        name="langchain-matched",
        chunk_size=size,
        chunk_overlap=overlap,
        description=(
            f"as langchain, RecursiveCharacterTextSplitter({size}, {overlap}): "
            f"chunk size tuned so chunks average ours ({target:.0f} chars)"
        ),
    )


def calibrate_chunk_size(texts: Sequence[str], target_chars: float, overlap_ratio: float) -> int:
    """The splitter chunk_size whose chunks average ``target_chars`` characters.

    chunk_size is a maximum, so chunks average less; a few proportional corrections
    (splitting only, no embedding) find the size.
    """
    size = round(target_chars)
    best: tuple[float, int] | None = None
    for _ in range(CALIBRATION_ROUNDS):
        splitter = langchain_baseline.make_splitter(size, round(size * overlap_ratio))
        lengths = [len(piece) for text in texts for piece in splitter.split_text(text)]
        mean = sum(lengths) / len(lengths)
        error = abs(mean - target_chars) / target_chars
        if best is None or error < best[0]:
            best = (error, size)
        if error <= CALIBRATION_TOLERANCE:
            break
        size = max(1, round(size * target_chars / mean))
    assert best is not None
    return best[1]


MethodFactory = Callable[[Resources, Sequence[Article]], Method]

METHODS: dict[str, MethodFactory] = {
    "ours": lambda resources, articles: OursDense(resources),
    "langchain": lambda resources, articles: LangChainFaiss(
        resources,
        name="langchain",
        chunk_size=langchain_baseline.DEFAULT_CHUNK_SIZE,
        chunk_overlap=langchain_baseline.DEFAULT_CHUNK_OVERLAP,
        description=(
            "defaults: RecursiveCharacterTextSplitter(1000, 200) characters; "
            "float32 embeddings; FAISS similarity_search"
        ),
    ),
    "langchain-matched": matched_langchain,
    "ours-hybrid": lambda resources, articles: OursDense(
        resources,
        name="ours-hybrid",
        description="the same session as `ours`; BM25 (bm25s) fused with dense by reciprocal rank",
        make_retriever=lambda r: Retriever(
            r.search_embedder,
            dedup_threshold=r.settings.dedup_threshold,
            hybrid=True,
            lexical_analyzer="words",
        ),
    ),
}


def variant_method(name: str) -> MethodFactory:
    """Our full pipeline (rag.retrieval.make_retriever) under a benchmarks.variants entry."""
    variant = VARIANTS[name]

    def factory(resources: Resources, articles: Sequence[Article]) -> Method:
        settings = resources.settings.model_copy(update=variant.overrides)
        return OursDense(
            resources,
            name=f"ours{name}" if name.startswith("-") else f"ours-{name}",
            description=variant.description,
            settings=settings,
            make_retriever=lambda r: variant_retriever(
                settings, r.search_embedder, variant.lexical_analyzer
            ),
        )

    return factory


# `ours-ours` reads badly: today's defaults are `ours-defaults` here.
METHODS["ours-defaults"] = variant_method("ours")
for _name in VARIANTS:
    if _name != "ours":
        METHODS[f"ours{_name}" if _name.startswith("-") else f"ours-{_name}"] = variant_method(
            _name
        )


# --- evaluation ----------------------------------------------------------------------


@dataclass
class MethodResult:
    name: str
    description: str
    index: IndexReport
    mean_chunk_tokens: float = 0.0
    truncated_share: float = 0.0  # chunks longer than the model reads; their tails are unseen
    coverage: float = 0.0  # questions whose answer lies whole inside some chunk
    ranks: list[int | None] = field(default_factory=list)
    query_seconds: list[float] = field(default_factory=list)

    def hit_at(self, k: int) -> float:
        return float(np.mean([r is not None and r <= k for r in self.ranks]))

    def reciprocal_ranks(self, k: int) -> np.ndarray:
        return np.array([1.0 / r if r is not None and r <= k else 0.0 for r in self.ranks])


def evaluate(
    methods: Sequence[Method],
    articles: Sequence[Article],
    questions: Sequence[Question],
    *,
    k: int,
    embedder: Embedder,
) -> list[MethodResult]:
    results: list[MethodResult] = []
    for method in methods:
        progress(f"indexing {len(articles)} articles with {method.name}")
        report = method.index(articles)
        progress(f"  [{method.name}] {len(report.chunk_texts)} chunks in {report.seconds:.0f} s")
        result = MethodResult(method.name, method.description, report)
        describe_chunks(result, questions, embedder)
        results.append(result)
    clock = Stopwatch()
    # Questions outer, methods inner: every method meets the same load at the same time.
    for number, question in enumerate(questions, start=1):
        for method, result in zip(methods, results, strict=True):
            started = time.perf_counter()
            passages = method.search(question.text, k)
            result.query_seconds.append(time.perf_counter() - started)
            result.ranks.append(first_hit_rank(passages[:k], question.answers))
        if number % 250 == 0 or number == len(questions):
            progress(f"asked {number}/{len(questions)} questions, {clock.elapsed():.0f} s")
    return results


def describe_chunks(
    result: MethodResult, questions: Sequence[Question], embedder: Embedder
) -> None:
    texts = result.index.chunk_texts
    tokens = [embedder.count_tokens(text) for text in texts]
    result.mean_chunk_tokens = sum(tokens) / len(tokens)
    result.truncated_share = sum(t > embedder.max_tokens for t in tokens) / len(tokens)
    # Answers never contain NUL, so "in the joined text" means "inside one chunk".
    joined = "\0".join(normalize(text) for text in texts)
    result.coverage = float(
        np.mean([any(answer in joined for answer in q.answers) for q in questions])
    )


def bootstrap_difference(
    values: np.ndarray, reference: np.ndarray, samples: int = BOOTSTRAP_SAMPLES
) -> tuple[float, float, float]:
    """Mean paired difference and its 95% bootstrap interval over questions."""
    differences = values - reference
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    picks = rng.integers(0, len(differences), size=(samples, len(differences)))
    means = differences[picks].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(differences.mean()), float(low), float(high)


# --- report --------------------------------------------------------------------------


def render(
    results: Sequence[MethodResult],
    *,
    articles: int,
    questions: int,
    k: int,
    command: str,
    machine: str,
    settings: Settings,
    total_s: float,
) -> str:
    rows = [
        [
            f"`{r.name}`",
            len(r.index.chunk_texts),
            f"{sum(map(len, r.index.chunk_texts)) / len(r.index.chunk_texts):.0f}",
            f"{r.mean_chunk_tokens:.0f}",
            f"{r.truncated_share:.1%}",
            f"{r.coverage:.1%}",
            f"**{r.hit_at(1):.3f}**",
            f"**{r.hit_at(5):.3f}**",
            f"**{r.reciprocal_ranks(10).mean():.3f}**",
            f"{r.index.seconds:.0f}",
            f"{median(r.query_seconds) * 1000:.0f}",
        ]
        for r in results
    ]
    table = markdown_table(
        [
            "method",
            "chunks",
            "mean chunk chars",
            "mean chunk tokens",
            "chunks truncated by the model",
            "answer inside some chunk",
            "hit@1",
            "hit@5",
            "MRR@10",
            "index s",
            "ms / query (median)",
        ],
        rows,
    )
    described = "\n".join(f"- `{r.name}`: {r.description}" for r in results)
    reference = results[0]
    comparisons = []
    for r in results[1:]:
        hit5 = bootstrap_difference(
            np.array([x is not None and x <= 5 for x in reference.ranks], float),
            np.array([x is not None and x <= 5 for x in r.ranks], float),
        )
        mrr = bootstrap_difference(reference.reciprocal_ranks(10), r.reciprocal_ranks(10))
        comparisons.append(
            f"- `{reference.name}` minus `{r.name}`: hit@5 {hit5[0]:+.3f} "
            f"(95% CI {hit5[1]:+.3f} to {hit5[2]:+.3f}), MRR@10 {mrr[0]:+.3f} "
            f"(95% CI {mrr[1]:+.3f} to {mrr[2]:+.3f})"
        )
    compared = "\n".join(comparisons) or "- (one method only)"
    return f"""## Retrieval quality: COVID-QA

{articles} articles indexed together (one session / one FAISS store per method), {questions}
questions, top-{k} passages per question. A hit is a retrieved passage that contains an
answer text, compared after lower-casing and collapsing whitespace (not by the dataset's
character offsets). Same embedding model (bundled all-MiniLM-L6-v2, at most 256 tokens
per input) for every method, in the same process with the same threads; each question is
asked of every method in turn, so they all meet the same load. Our settings:
chunk_size_tokens={settings.chunk_size_tokens},
chunk_overlap_tokens={settings.chunk_overlap_tokens},
embedding backend {resolve_backend(settings)},
embedding_dtype={settings.embedding_dtype},
dedup_threshold={settings.dedup_threshold}.

{table}

{described}

"answer inside some chunk" is each method's ceiling: an answer cut by a chunk boundary
cannot be hit. Larger chunks raise it and make "contains the answer" easier, which is why
`langchain-matched` (LangChain with chunks as long as ours, in characters) is in the
table. "chunks truncated by the model": chunks longer than the model's 256-token window,
whose tails the embedding never sees.

Paired differences over the same questions (bootstrap, {BOOTSTRAP_SAMPLES} resamples):

{compared}

Command (from the repository root; {total_s / 60:.1f} min wall in total):

```
{command}
```

Machine: {machine}
"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--methods",
        default=",".join(METHODS),
        help=f"comma-separated, first is the reference; known: {', '.join(METHODS)}",
    )
    parser.add_argument("--articles", type=int, default=None, help="first N articles only")
    parser.add_argument(
        "--quick", action="store_true", help=f"smoke run: first {QUICK_ARTICLES} articles"
    )
    parser.add_argument("--k", type=int, default=10, help="passages per question (>= 5)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=None, help="also write the section here")
    parser.add_argument(
        "--cache", action="store_true", help="reuse the benchmark's on-disk embedding cache"
    )
    parser.add_argument(
        "--questions", type=int, default=None, help="first N questions only (iteration)"
    )
    args = parser.parse_args(argv)
    if args.quick and args.articles is None:
        args.articles = QUICK_ARTICLES
    unknown = [m for m in args.methods.split(",") if m not in METHODS]
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(METHODS)}")
    if args.k < 5:
        parser.error("--k must be at least 5 (hit@5 is reported)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    clock = Stopwatch()
    configure_threads(args.threads)
    machine = describe_machine(args.threads)
    settings = load_settings(threads=args.threads)
    articles, questions = load_covidqa(articles=args.articles)
    progress(f"COVID-QA: {len(articles)} articles, {len(questions)} questions")
    if args.questions is not None:
        questions = questions[: args.questions]
    resources = Resources(settings, use_cache=args.cache)
    methods = [METHODS[name](resources, articles) for name in args.methods.split(",")]
    results = evaluate(methods, articles, questions, k=args.k, embedder=resources.embedder)
    command = command_line("benchmarks.covidqa_bench", argv)
    report = render(
        results,
        articles=len(articles),
        questions=len(questions),
        k=args.k,
        command=command,
        machine=machine.describe(),
        settings=settings,
        total_s=clock.elapsed(),
    )
    write_report(report, args.output)
    figures = retrieval_figures(results, dataset=f"COVID-QA ({len(questions)} questions)", ks=[5])
    write_results(args.output, figures, command=command, machine=machine.describe())
    progress(f"done in {clock.elapsed():.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
