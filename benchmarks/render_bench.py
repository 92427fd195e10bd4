"""Page view: render time per page and the memory a session holds per MB of uploaded PDF.

Render time is ``ingest.page_view.view_page`` as the API route calls it: open the held
bytes with PDFium, draw the page, find the cited span in PDFium's text, draw the highlight,
encode the PNG. Side by side in one run, alternating: the same page without a span (draw
and encode only), so the cost of locating and drawing the highlight shows.

    .venv/bin/python -m benchmarks.render_bench --output docs/benchmarks/render.md
    .venv/bin/python -m benchmarks.render_bench --quick
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from benchmarks import data
from benchmarks.common import (
    PDFS,
    Stopwatch,
    command_line,
    describe_machine,
    markdown_table,
    median,
    progress,
    write_report,
)
from benchmarks.results import Figure, write_results
from core.memory import release_freed_memory
from core.settings import load_settings
from ingest.loader import get_parser_pool, load_document
from ingest.models import SourceDocument
from ingest.page_view import PageImage, view_page
from rag.embedding import configure_threads, make_embedder
from rag.pipeline import Ingestor
from serving.wiring import make_store

FILINGS = data.root() / "financebench-dev" / "pdfs"
WIDTHS = (800, 1400)
TIMEOUT_S = 60.0
PARSE_S = 900.0  # generous: the shared cores can be very busy; this is not what is measured


@dataclass(frozen=True, slots=True)
class Case:
    """One page and the span a citation would highlight on it (found by its words)."""

    label: str
    pdf: Path
    page: int
    span_words: str


CASES = (
    Case("attention paper p. 7 (P100 citation)", PDFS / "attention-is-all-you-need.pdf", 7,
         "8 NVIDIA P100 GPUs"),
    # FinanceBench's capex question: the cash-flow statement, the PP&E purchases row.
    Case("3M 2018 10-K p. 60 (cash-flow table)", FILINGS / "3M_2018_10K.pdf", 60,
         "Purchases of property, plant and equipment"),
)  # fmt: skip
MEMORY_PDFS = (
    PDFS / "attention-is-all-you-need.pdf",
    FILINGS / "3M_2018_10K.pdf",
    FILINGS / "AMAZON_2017_10K.pdf",
    FILINGS / "BESTBUY_2023_10K.pdf",
)


@dataclass(frozen=True, slots=True)
class Timing:
    case: Case
    width: int
    highlighted: list[float]  # seconds per render, with the span
    plain: list[float]  # the same page without a span
    png_bytes: int
    boxes: int


def held(pdf: Path) -> SourceDocument:
    raw = pdf.read_bytes()
    parsed = load_document(raw, pdf.name, max_bytes=len(raw), max_pages=2000, timeout_s=PARSE_S)
    return SourceDocument(raw, parsed.media_type, parsed.pages)


def span_of(source: SourceDocument, case: Case) -> tuple[int, int]:
    text = source.pages[case.page - 1].text
    start = text.find(case.span_words)
    if start < 0:
        raise SystemExit(f"'{case.span_words}' is not on page {case.page} of {case.pdf.name}")
    line_end = text.find("\n", start)
    return start, line_end if line_end > 0 else len(text)  # the whole row or line


def time_renders(case: Case, width: int, repeats: int) -> Timing:
    source = held(case.pdf)
    span = span_of(source, case)
    highlighted: list[float] = []
    plain: list[float] = []
    image: PageImage | None = None
    view_page(source, case.page, span=span, width=width, timeout_s=TIMEOUT_S)  # warm-up
    for _ in range(repeats):  # A B A B: both meet the same load
        for target, chosen in ((highlighted, span), (plain, None)):
            started = time.perf_counter()
            view = view_page(source, case.page, span=chosen, width=width, timeout_s=TIMEOUT_S)
            target.append(time.perf_counter() - started)
            if chosen is not None:
                assert isinstance(view, PageImage)
                image = view
    assert image is not None and image.highlights, f"no highlight on {case.label}"
    return Timing(case, width, highlighted, plain, len(image.png), len(image.highlights))


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


@dataclass(frozen=True, slots=True)
class Memory:
    files: int
    pages: int
    chunks: int
    uploaded: int
    accounted: int  # what the memory caps count: the bytes and their page text
    rss_held: int
    rss_after_delete: int


def bitmap_mb(width: int) -> float:
    """The BGRx bitmap of a US Letter page (8.5 x 11 in) ``width`` pixels wide, in MB."""
    return width * round(width * 11 / 8.5) * 4 / 1024**2


def rss() -> int:
    import psutil

    gc.collect()
    release_freed_memory()
    return int(psutil.Process().memory_info().rss)


def measure_memory(pdfs: Sequence[Path], threads: int) -> Memory:
    """RSS a session holds after ingesting the PDFs (bytes, text, chunks, vectors, index),
    with a warm-up ingest first so that model buffers are in the baseline."""
    settings = load_settings(threads=threads, parse_timeout_s=PARSE_S)
    embedder = make_embedder(settings)
    store = make_store(settings, embedder)
    ingestor = Ingestor(settings, embedder)
    warm = store.create()
    ingestor.ingest(warm, pdfs[0].read_bytes(), pdfs[0].name)
    store.delete(warm.id)
    baseline = rss()
    session = store.create()
    for pdf in pdfs:
        info, _ = ingestor.ingest(session, pdf.read_bytes(), pdf.name)
        progress(f"  memory: {pdf.name}: {info.pages} pages, {info.chunks} chunks")
    held_rss = rss() - baseline
    memory = Memory(
        files=len(pdfs),
        pages=sum(d.pages for d in session.documents.values()),
        chunks=session.chunk_count,
        uploaded=sum(d.size_bytes for d in session.documents.values()),
        accounted=session.memory_bytes,
        rss_held=held_rss,
        rss_after_delete=0,
    )
    store.delete(session.id)
    return replace(memory, rss_after_delete=rss() - baseline)


def report(
    timings: Sequence[Timing], memory: Memory, machine: str, command: str, repeats: int
) -> str:
    ms = 1000.0
    rows = [
        [
            t.case.label,
            t.width,
            f"{median(t.highlighted) * ms:,.0f}",
            f"{percentile(t.highlighted, 0.95) * ms:,.0f}",
            f"{median(t.plain) * ms:,.0f}",
            f"{percentile(t.plain, 0.95) * ms:,.0f}",
            f"{median(t.highlighted) / median(t.plain):.2f}",
            f"{t.png_bytes / 1024:,.0f}",
            t.boxes,
        ]
        for t in timings
    ]
    mb = 1024**2
    per_mb = memory.rss_held / memory.uploaded
    lines = [
        "## Page view: rendering cited pages",
        "",
        f"Produced by `{command}`.",
        "",
        f"Machine: {machine}",
        "",
        f"Each page rendered {repeats} times per width, alternating with the same page without "
        "a span; one thread (PDFium renders one page at a time in the server). Times are "
        "`view_page` as the route runs it: open the held PDF bytes with PDFium, draw the page, "
        "locate the cited span in PDFium's text, draw the translucent rectangles, encode PNG "
        "(zlib level 3). The span is the line holding the words named in the first column.",
        "",
        markdown_table(
            [
                "page",
                "width px",
                "p50 ms",
                "p95 ms",
                "no span p50 ms",
                "no span p95 ms",
                "span/no span",
                "PNG KiB",
                "rectangles",
            ],
            rows,
        ),
        "",
        "### Memory held per MB of uploaded PDF",
        "",
        f"{memory.files} PDFs ({', '.join(p.name for p in MEMORY_PDFS[: memory.files])}), "
        f"{memory.uploaded / mb:.2f} MB, {memory.pages} pages, {memory.chunks:,} chunks, "
        "ingested into one session (real embedder, FAISS), after a warm-up ingest. RSS is "
        "read after `gc.collect()` and `malloc_trim`.",
        "",
        markdown_table(
            ["what", "MB", "per MB uploaded"],
            [
                ["uploaded files", f"{memory.uploaded / mb:.2f}", "1.00"],
                [
                    "counted by the memory caps (files + parsed text)",
                    f"{memory.accounted / mb:.2f}",
                    f"{memory.accounted / memory.uploaded:.2f}",
                ],
                [
                    "RSS held by the session (files, text, chunks, vectors, index)",
                    f"{memory.rss_held / mb:.2f}",
                    f"{per_mb:.2f}",
                ],
                [
                    "RSS left after deleting the session",
                    f"{memory.rss_after_delete / mb:.2f}",
                    f"{memory.rss_after_delete / memory.uploaded:.2f}",
                ],
            ],
        ),
        "",
        f"A session holds **{per_mb:.1f} MB per MB of uploaded PDF**; keeping the original "
        f"bytes for the page view is {memory.uploaded / max(1, memory.rss_held):.0%} of it, "
        "and the caps (`PGPT_MAX_DOCUMENT_MB_PER_SESSION`, `PGPT_MAX_TOTAL_DOCUMENT_MB`) count "
        "the files and their text. A render's bitmap (4 bytes a pixel: "
        f"{bitmap_mb(WIDTHS[0]):.1f} MB at {WIDTHS[0]} px and {bitmap_mb(WIDTHS[1]):.1f} MB at "
        f"{WIDTHS[1]:,} px on US Letter) lives only while that one page is drawn.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description="Page view render time and memory.")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 renders, 1 PDF")
    parser.add_argument("--repeats", type=int, default=30, help="renders per page and width")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--memory-pdfs", type=int, default=len(MEMORY_PDFS), help="how many PDFs to hold"
    )
    parser.add_argument("--output", type=Path, default=None, help="also write the section here")
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else args.repeats
    cases = CASES[:1] if args.quick else CASES
    memory_pdfs = MEMORY_PDFS[: 1 if args.quick else args.memory_pdfs]

    clock = Stopwatch()
    configure_threads(args.threads)
    machine = describe_machine(args.threads)
    get_parser_pool().warm_up()
    timings: list[Timing] = []
    for case in cases:
        for width in WIDTHS:
            timing = time_renders(case, width, repeats)
            progress(f"{case.label} @ {width}px: p50 {median(timing.highlighted) * 1000:.0f} ms")
            timings.append(timing)
    progress("memory")
    memory = measure_memory(memory_pdfs, args.threads)
    command = command_line("benchmarks.render_bench", argv)
    text = report(timings, memory, machine.describe(), command, repeats)
    write_report(text, args.output)
    figures = [
        Figure(
            "Page view",
            f"{t.case.label}, {t.width} px, with highlight, p50",
            median(t.highlighted) * 1000,
            "ms",
            "same page without highlight",
            median(t.plain) * 1000,
            higher_is_better=False,
            digits=0,
        )
        for t in timings
        if t.width == min(WIDTHS)
    ]
    write_results(args.output, figures, command=command, machine=machine.describe())
    progress(f"done in {clock.elapsed():.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
