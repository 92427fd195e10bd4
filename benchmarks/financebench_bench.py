"""Retrieval on long, table-heavy SEC filings (FinanceBench): ours against LangChain.

Every method indexes all filings of a set in one session, then answers its analyst
questions: `dev` (financebench-dev, 11 filings, 1,495 pages, 32 questions; what retrieval
was tuned on) or `holdout` (8 other 10-Ks of the same public sample, 28 questions; never
tuned on, fetched by `make data` where it can be downloaded). A hit at k is an evidence
page (file and page) among the pages the top k passages cover; a passage that spans pages
counts every page it covers.

Variants of our pipeline are settings overrides (``VARIANTS``); variants that parse and
chunk alike share one session, and each PDF text mode is parsed once per run. Vectors
come from a dev-only on-disk cache of the benchmark's own embeddings
(benchmarks/embedding_cache.py) unless ``--no-cache``; index times are only real
when nothing came from the cache (the report says which).

    .venv/bin/python -m benchmarks.financebench_bench --output docs/benchmarks/financebench.md
    .venv/bin/python -m benchmarks.financebench_bench --methods langchain,ours --no-cache
    .venv/bin/python -m benchmarks.financebench_bench --set holdout --methods ours,langchain
    .venv/bin/python -m benchmarks.financebench_bench --quick
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import data, langchain_baseline
from benchmarks.common import (
    Stopwatch,
    command_line,
    describe_machine,
    markdown_table,
    median,
    progress,
    write_report,
)
from benchmarks.embedding_cache import CachedVectors, CachingEmbedder, cache_file
from benchmarks.pdf_modes import COMPARED_MODES, parse_text_modes
from benchmarks.results import retrieval_figures, write_results
from benchmarks.variants import VARIANTS, Variant, variant_retriever
from core.settings import Settings, load_settings
from ingest.loader import get_parser_pool
from ingest.models import ParsedDocument, SourceDocument
from rag.embedding import (
    Embedder,
    configure_threads,
    make_embedder,
    resolve_backend,
    resolve_batch_size,
)
from rag.pipeline import Ingestor
from rag.retrieval import Retriever
from rag.sessions import Session
from serving.wiring import make_store

SETS = ("dev", "holdout")
QUICK_FILINGS = ("AMAZON_2017_10K",)
KS = (1, 5, 10)
SAMPLE_INTERVAL_S = 0.1
PARSE_TIMEOUT_S = 3600.0  # the cores are shared: a generous guard, not a limit


@dataclass(frozen=True, slots=True)
class FinanceQuestion:
    text: str
    doc_name: str
    evidence: frozenset[tuple[str, int]]  # (filename, page counted from 1)


def load_financebench(
    name: str = "dev", *, filings: Sequence[str] | None = None
) -> tuple[list[Path], list[FinanceQuestion]]:
    """The set's filings (all when None) and the questions whose evidence lies in them."""
    folder = f"financebench-{name}"
    paths = sorted(
        data.path(entry.name)
        for entry in data.load_manifest()
        if entry.name.startswith(f"{folder}/pdfs/")
    )
    if filings is not None:
        paths = [p for p in paths if p.stem in filings]
    names = {p.stem for p in paths}
    questions = []
    for line in data.path(f"{folder}/questions.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        if entry["doc_name"] not in names:
            continue
        evidence = frozenset(
            (f"{e['doc_name']}.pdf", int(e["evidence_page_num"]) + 1) for e in entry["evidence"]
        )
        questions.append(FinanceQuestion(entry["question"], entry["doc_name"], evidence))
    return paths, questions


# --- methods -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Passage:
    filename: str
    first_page: int
    last_page: int

    def pages(self) -> set[tuple[str, int]]:
        return {(self.filename, p) for p in range(self.first_page, self.last_page + 1)}


@dataclass
class IndexReport:
    pages: int
    chunks: int
    mean_chunk_chars: float
    seconds: float  # parsing included
    peak_rss_growth: int  # bytes above the start, this process and its children
    cached_share: float  # vectors that came from the embedding cache


@dataclass(frozen=True, slots=True)
class Parse:
    documents: list[ParsedDocument]
    seconds: float
    peak_rss_growth: int


class Resources:
    """Embedders, parses and sessions built once per run and shared by the methods."""

    def __init__(self, settings: Settings, paths: Sequence[Path], *, use_cache: bool) -> None:
        self.settings = settings
        self.paths = list(paths)
        self.use_cache = use_cache
        self._embedder: Embedder | None = None
        self._caching: CachingEmbedder | None = None
        self._langchain: Any = None
        self._parses: dict[str, Parse] = {}
        self._sessions: dict[tuple[object, ...], tuple[Session, IndexReport]] = {}

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = make_embedder(self.settings)
        return self._embedder

    @property
    def search_embedder(self) -> Embedder:
        """What sessions and retrievers embed with: cached unless --no-cache."""
        if not self.use_cache:
            return self.embedder
        if self._caching is None:
            self._caching = CachingEmbedder.ours(self.embedder, resolve_batch_size(self.settings))
        return self._caching

    @property
    def langchain_embeddings(self) -> Any:
        if self._langchain is None:
            self._langchain = langchain_baseline.make_embeddings()
        return self._langchain

    def parsed(self, settings: Settings) -> Parse:
        """Every filing parsed once per run in the parser workers, two files at a time.

        One pass gives every compared text mode (benchmarks/pdf_modes.py); the time
        measured is theirs together (ingest_bench times each mode alone).
        """
        if settings.pdf_text_mode not in COMPARED_MODES:
            raise ValueError(f"the benchmark parses in the modes {COMPARED_MODES} only")
        if not self._parses:
            pool = get_parser_pool()

            def parse(path: Path) -> dict[str, ParsedDocument]:
                return pool.run(
                    parse_text_modes,
                    path.read_bytes(),
                    path.name,
                    settings.max_pages,
                    timeout_s=PARSE_TIMEOUT_S,
                    filename=path.name,
                )

            with peak_rss() as peak, ThreadPoolExecutor(max_workers=2) as threads:
                clock = Stopwatch()
                parsed = list(threads.map(parse, self.paths))
                seconds = clock.elapsed()
            for mode in COMPARED_MODES:
                self._parses[mode] = Parse([p[mode] for p in parsed], seconds, peak[0])
            pages = sum(p["auto"].page_count for p in parsed)
            progress(f"  parsed {pages} pages ({', '.join(COMPARED_MODES)}) in {seconds:.0f} s")
        return self._parses[settings.pdf_text_mode]

    def session(self, settings: Settings) -> tuple[Session, IndexReport]:
        key = (
            settings.pdf_text_mode,
            settings.context_headers,
            settings.chunk_size_tokens,
            settings.chunk_overlap_tokens,
        )
        if key not in self._sessions:
            embedder = self.search_embedder
            parse = self.parsed(settings)
            documents = parse.documents
            store = make_store(settings, embedder)
            ingestor = Ingestor(settings, embedder)
            session = store.create()
            cached_before = _cache_size(embedder)
            with peak_rss() as peak:
                clock = Stopwatch()
                for number, document in enumerate(documents, start=1):
                    add_parsed(ingestor, session, document)
                    progress(
                        f"  [ours {key}] {number}/{len(documents)} filings, "
                        f"{session.chunk_count} chunks, {clock.elapsed():.0f} s"
                    )
                seconds = clock.elapsed()
            fresh = _cache_size(embedder) - cached_before
            if isinstance(embedder, CachingEmbedder):
                embedder.save()
            texts = [c.text for c in session.chunks.values()]
            self._sessions[key] = (
                session,
                IndexReport(
                    pages=sum(d.page_count for d in documents),
                    chunks=len(texts),
                    mean_chunk_chars=sum(map(len, texts)) / len(texts),
                    seconds=parse.seconds + seconds,
                    peak_rss_growth=max(parse.peak_rss_growth, peak[0]),
                    cached_share=1.0 - fresh / len(texts)
                    if isinstance(embedder, CachingEmbedder)
                    else 0.0,
                ),
            )
        return self._sessions[key]


def add_parsed(ingestor: Ingestor, session: Session, document: ParsedDocument) -> None:
    """Chunk (in this process), embed and index a filing parsed once for every run that
    shares its text mode: the shipped path, after the parse it would do for each upload."""
    chunks = ingestor.chunker.split(document, secrets.token_hex(8))
    source = SourceDocument(b"", document.media_type, document.pages)
    ingestor.index(session, document, chunks, source)


def _cache_size(embedder: Embedder) -> int:
    return embedder.cached_count if isinstance(embedder, CachingEmbedder) else 0


class Ours:
    def __init__(self, resources: Resources, name: str, variant: Variant) -> None:
        self.name = name
        self.description = variant.description
        self._resources = resources
        self.settings = resources.settings.model_copy(update=variant.overrides)
        self._analyzer = variant.lexical_analyzer
        self._session: Session | None = None
        self._retriever: Retriever | None = None

    def index(self) -> IndexReport:
        self._session, report = self._resources.session(self.settings)
        self._retriever = variant_retriever(
            self.settings, self._resources.search_embedder, self._analyzer
        )
        return report

    def search(self, question: str, k: int) -> list[Passage]:
        if self._session is None or self._retriever is None:
            raise RuntimeError("index() first")
        hits = self._retriever.search(self._session, question, top_k=k)
        return [Passage(h.chunk.filename, h.chunk.page, h.chunk.page_end) for h in hits]


class LangChain:
    """PyPDFLoader -> RecursiveCharacterTextSplitter(1000, 200) -> MiniLM -> FAISS."""

    name = "langchain"
    description = (
        "PyPDFLoader, RecursiveCharacterTextSplitter(1000, 200), the same MiniLM "
        "(HuggingFaceEmbeddings, float32), FAISS similarity_search"
    )

    def __init__(self, resources: Resources) -> None:
        self._resources = resources
        self._store: Any = None

    def index(self) -> IndexReport:
        from langchain_community.document_loaders import PyPDFLoader

        resources = self._resources
        embeddings = resources.langchain_embeddings
        cache = (
            CachedVectors(cache_file("langchain", "all-MiniLM-L6-v2", "float32"), 384)
            if resources.use_cache
            else None
        )
        with peak_rss() as peak:
            clock = Stopwatch()
            pages = [page for path in resources.paths for page in PyPDFLoader(str(path)).load()]
            progress(f"  [langchain] loaded {len(pages)} pages in {clock.elapsed():.0f} s")
            chunks = langchain_baseline.make_splitter().split_documents(pages)
            texts = [c.page_content for c in chunks]
            fresh = len(texts)
            if cache is None:
                vectors = langchain_baseline.embed_documents(embeddings, texts)
            else:
                before = cache.size
                array = cache.lookup(
                    texts, lambda new: np.asarray(embeddings.embed_documents(new), np.float32)
                )
                fresh = cache.size - before
                cache.save()
                vectors = array.tolist()
            self._store = langchain_baseline.build_faiss(chunks, vectors, embeddings)
            seconds = clock.elapsed()
        return IndexReport(
            pages=len(pages),
            chunks=len(chunks),
            mean_chunk_chars=sum(map(len, texts)) / len(texts),
            seconds=seconds,
            peak_rss_growth=peak[0],
            cached_share=1.0 - fresh / len(texts) if cache is not None else 0.0,
        )

    def search(self, question: str, k: int) -> list[Passage]:
        found = self._store.similarity_search(question, k=k)
        return [
            Passage(
                Path(d.metadata["source"]).name,
                int(d.metadata["page"]) + 1,
                int(d.metadata["page"]) + 1,
            )
            for d in found
        ]


Method = Ours | LangChain


def make_method(name: str, resources: Resources) -> Method:
    if name == "langchain":
        return LangChain(resources)
    return Ours(resources, name, VARIANTS[name])


@contextmanager
def peak_rss() -> Iterator[list[int]]:
    """Highest RSS growth (this process plus its children) seen while the block runs."""
    import psutil

    me = psutil.Process()

    def total() -> int:
        size = me.memory_info().rss
        for child in me.children(recursive=True):
            with suppress(psutil.Error):
                size += child.memory_info().rss
        return int(size)

    start = total()
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(SAMPLE_INTERVAL_S):
            peak[0] = max(peak[0], total() - start)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()
        peak[0] = max(peak[0], total() - start)


# --- evaluation ----------------------------------------------------------------------


@dataclass
class MethodResult:
    name: str
    description: str
    index: IndexReport
    ranks: list[int | None] = field(default_factory=list)
    query_seconds: list[float] = field(default_factory=list)

    def hit_at(self, k: int) -> float:
        return float(np.mean([r is not None and r <= k for r in self.ranks]))

    def hits_at(self, k: int) -> int:
        return sum(r is not None and r <= k for r in self.ranks)

    def mrr(self, k: int) -> float:
        return float(np.mean([1.0 / r if r is not None and r <= k else 0.0 for r in self.ranks]))


def first_evidence_rank(
    passages: Sequence[Passage], evidence: frozenset[tuple[str, int]]
) -> int | None:
    for rank, passage in enumerate(passages, start=1):
        if passage.pages() & evidence:
            return rank
    return None


def evaluate(
    methods: Sequence[Method],
    questions: Sequence[FinanceQuestion],
    *,
    k: int,
    on_result: Callable[[list[MethodResult]], None] | None = None,
) -> list[MethodResult]:
    """Index with each method in turn and ask it every question; ``on_result`` hears
    the results so far after each method (a long run leaves a report as it goes)."""
    results: list[MethodResult] = []
    for method in methods:
        progress(f"indexing with {method.name}")
        report = method.index()
        progress(f"  [{method.name}] {report.chunks} chunks in {report.seconds:.0f} s")
        result = MethodResult(method.name, method.description, report)
        for question in questions:
            started = time.perf_counter()
            passages = method.search(question.text, k)
            result.query_seconds.append(time.perf_counter() - started)
            result.ranks.append(first_evidence_rank(passages[:k], question.evidence))
        progress(f"  [{method.name}] hit@5 {result.hit_at(5):.3f}, hit@10 {result.hit_at(10):.3f}")
        results.append(result)
        if on_result is not None:
            on_result(results)
    return results


# --- report --------------------------------------------------------------------------


def render(
    results: Sequence[MethodResult],
    questions: Sequence[FinanceQuestion],
    *,
    command: str,
    machine: str,
    settings: Settings,
    total_s: float,
    set_name: str = "dev",
) -> str:
    n = len(questions)
    rows = [
        [
            f"`{r.name}`",
            r.index.chunks,
            f"{r.index.mean_chunk_chars:.0f}",
            f"{r.hit_at(1):.3f}",
            f"**{r.hit_at(5):.3f}** ({r.hits_at(5)}/{n})",
            f"**{r.hit_at(10):.3f}** ({r.hits_at(10)}/{n})",
            f"{r.mrr(10):.3f}",
            f"{median(r.query_seconds) * 1000:.0f}",
        ]
        for r in results
    ]
    table = markdown_table(
        [
            "method",
            "chunks",
            "mean chunk chars",
            "hit@1",
            "hit@5",
            "hit@10",
            "MRR@10",
            "ms / query (median)",
        ],
        rows,
    )
    described = "\n".join(f"- `{r.name}`: {r.description}" for r in results)
    seen: set[tuple[int, int]] = set()
    ingest_rows = []
    for r in results:
        key = (r.index.chunks, round(r.index.seconds))
        if key in seen:
            continue  # variants sharing a session
        seen.add(key)
        ingest_rows.append(
            [
                f"`{r.name}`",
                r.index.pages,
                r.index.chunks,
                f"{r.index.seconds:.0f}",
                f"**{r.index.pages / r.index.seconds:.2f}**",
                f"{r.index.peak_rss_growth / 1024**2:.0f}",
                f"{r.index.cached_share:.0%}",
            ]
        )
    ingest = markdown_table(
        [
            "index built by",
            "pages",
            "chunks",
            "index s",
            "pages/s",
            "peak RSS growth MiB",
            "vectors from the cache",
        ],
        ingest_rows,
    )
    per_question = markdown_table(
        ["#", "filing", "evidence pages", *(f"`{r.name}`" for r in results)],
        [
            [
                number,
                q.doc_name,
                ", ".join(str(p) for _, p in sorted(q.evidence)),
                *(r.ranks[number - 1] or "-" for r in results),
            ]
            for number, q in enumerate(questions, start=1)
        ],
    )
    return f"""## Retrieval quality: financebench-{set_name} (SEC filings)

{len({q.doc_name for q in questions})} filings ({results[0].index.pages} pages) indexed
together, one session / one FAISS store per method; {n} FinanceBench analyst questions.
A hit at k: an evidence page (file and page) is among the pages covered by the top k
passages (a passage spanning pages counts each page it covers). Same embedding model
(bundled all-MiniLM-L6-v2) for every method, same process and threads; each question is
asked of every method in turn. Our settings: chunk_size_tokens={settings.chunk_size_tokens},
chunk_overlap_tokens={settings.chunk_overlap_tokens}, embedding backend {resolve_backend(settings)},
embedding_dtype={settings.embedding_dtype}.

{table}

{described}

### Ingestion of the filings

Parsing is included (ours: the loader's parser worker processes, two files at a time,
then chunking and embedding; LangChain: PyPDFLoader in-process, splitting, embedding,
FAISS). Peak RSS growth: the highest resident memory of the process and its children
above where the stage started (the larger of parsing and indexing for ours), sampled
every {SAMPLE_INTERVAL_S:g} s. Index
times are only the real embedding cost when no vector came from the benchmark's
embedding cache (last column 0%).

{ingest}

### Rank of the first evidence page per question ("-": not in the top {max(KS)})

{per_question}

Command (from the repository root; {total_s / 60:.1f} min wall in total):

```
{command}
```

Machine: {machine}
"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    known = ["langchain", *VARIANTS]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--methods", default="ours,langchain,before", help=f"comma-separated; known: {known}"
    )
    parser.add_argument(
        "--set", choices=SETS, default="dev", help="dev: tuned on; holdout: never tuned on"
    )
    parser.add_argument("--quick", action="store_true", help=f"smoke run: {QUICK_FILINGS}")
    parser.add_argument("--no-cache", action="store_true", help="embed everything afresh")
    parser.add_argument(
        "--filings",
        default=None,
        help="comma-separated filing names (e.g. BESTBUY_2023_10K): a subset, for iteration",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=None, help="also write the section here")
    args = parser.parse_args(argv)
    unknown = [m for m in args.methods.split(",") if m not in known]
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    clock = Stopwatch()
    configure_threads(args.threads)
    machine = describe_machine(args.threads)
    settings = load_settings(threads=args.threads)
    chosen = args.filings.split(",") if args.filings else None
    paths, questions = load_financebench(args.set, filings=QUICK_FILINGS if args.quick else chosen)
    progress(f"financebench-{args.set}: {len(paths)} filings, {len(questions)} questions")
    resources = Resources(settings, paths, use_cache=not args.no_cache)
    methods = [make_method(name, resources) for name in args.methods.split(",")]

    command = command_line("benchmarks.financebench_bench", argv)

    def report(results: list[MethodResult]) -> None:
        text = render(
            results,
            questions,
            command=command,
            machine=machine.describe(),
            settings=settings,
            total_s=clock.elapsed(),
            set_name=args.set,
        )
        write_report(text, args.output)
        dataset = f"financebench-{args.set} ({len(questions)} questions)"
        figures = retrieval_figures(results, dataset=dataset, ks=[5, 10])
        write_results(args.output, figures, command=command, machine=machine.describe())

    evaluate(methods, questions, k=max(KS), on_result=report)
    progress(f"done in {clock.elapsed():.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
