"""OCR quality and speed: the attention paper scanned in memory, read back by our OCR path.

Each page of ../shared/data/pdfs/attention-is-all-you-need.pdf is rendered to an image at
the given resolution and the images are saved as an image-only PDF (no text layer), all
in memory. That PDF goes through the real loader (parser worker pool, one OCR job per
page, PGPT_OCR_DPI = the same resolution). The baseline is the paper's own text layer
(pypdf, cleaned as for any PDF): the character error rate is the edit distance between
OCR text and text layer over the text layer's length, both with whitespace collapsed
(and, second column, with whitespace removed, so glued words do not count).

Usage: nice -n 10 .venv/bin/python -m benchmarks.ocr_bench --output docs/benchmarks/ocr.md
"""

from __future__ import annotations

import argparse
import io
import itertools
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rapidfuzz.distance import Levenshtein

from benchmarks.common import (
    PDFS,
    command_line,
    describe_machine,
    markdown_table,
    progress,
    write_report,
)
from benchmarks.results import Figure, write_results
from ingest.ocr import OCR_THREADS

PAPER = PDFS / "attention-is-all-you-need.pdf"
MEMORY_POLL_S = 0.2


@dataclass(frozen=True, slots=True)
class Run:
    dpi: int
    pages: int
    page_numbers: list[int]
    seconds: float
    page_seconds: list[float]
    cer: list[float]
    cer_no_space: list[float]
    peak_worker_rss_mb: float
    p100_found: bool


def scanned_pdf(pages: Sequence[int], dpi: int) -> bytes:
    """An image-only PDF of the paper's ``pages`` rendered at ``dpi``, built in memory."""
    import pypdfium2 as pdfium

    source = pdfium.PdfDocument(PAPER.read_bytes())
    images = [source[number - 1].render(scale=dpi / 72).to_pil().convert("RGB") for number in pages]
    buffer = io.BytesIO()
    images[0].save(
        buffer, format="PDF", save_all=True, append_images=images[1:], resolution=float(dpi)
    )
    return buffer.getvalue()


def text_layer(pages: Sequence[int]) -> list[str]:
    from pypdf import PdfReader

    from ingest.pdf import clean_pages

    reader = PdfReader(io.BytesIO(PAPER.read_bytes()))
    return clean_pages([reader.pages[number - 1].extract_text() for number in pages])


def cer(ocr: str, reference: str, *, keep_spaces: bool) -> float:
    joiner = " " if keep_spaces else ""
    hypothesis, truth = joiner.join(ocr.split()), joiner.join(reference.split())
    return Levenshtein.distance(hypothesis, truth) / max(1, len(truth))


class PeakMemory:
    """Polls the parser workers' resident memory and keeps the largest value seen."""

    def __init__(self) -> None:
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        import psutil

        from ingest.loader import get_parser_pool

        while not self._stop.wait(MEMORY_POLL_S):
            for pid in get_parser_pool().worker_pids:
                try:
                    rss = psutil.Process(pid).memory_info().rss
                except psutil.Error:
                    continue
                self.peak_bytes = max(self.peak_bytes, rss)


def measure(pages: Sequence[int], dpi: int, references: list[str], memory: PeakMemory) -> Run:
    from ingest.loader import load_document

    data = scanned_pdf(pages, dpi)
    stamps: list[float] = []
    started = time.perf_counter()
    document = load_document(
        data,
        f"attention-scan-{dpi}dpi.pdf",
        max_bytes=len(data) + 1,
        max_pages=len(pages),
        timeout_s=1800,
        ocr_dpi=dpi,
        progress=lambda done, total: stamps.append(time.perf_counter()),
    )
    seconds = time.perf_counter() - started
    page_seconds = [b - a for a, b in itertools.pairwise(stamps)]
    texts = [page.text for page in document.pages]
    return Run(
        dpi=dpi,
        pages=len(pages),
        page_numbers=list(pages),
        seconds=seconds,
        page_seconds=page_seconds,
        cer=[cer(t, r, keep_spaces=True) for t, r in zip(texts, references, strict=True)],
        cer_no_space=[cer(t, r, keep_spaces=False) for t, r in zip(texts, references, strict=True)],
        peak_worker_rss_mb=memory.peak_bytes / 1024**2,  # of both workers: runs overlap
        p100_found=any("P100" in text for text in texts),
    )


def report(runs: list[Run], argv: Sequence[str], machine: str) -> str:
    rows = [
        [
            f"{run.dpi} dpi",
            run.pages,
            f"{statistics.median(run.cer):.3f}",
            f"{statistics.mean(run.cer):.3f}",
            f"{max(run.cer):.3f}",
            f"{statistics.median(run.cer_no_space):.3f}",
            f"{statistics.median(run.page_seconds):.1f}",
            f"{run.pages / run.seconds:.3f}",
            f"{run.peak_worker_rss_mb:.0f}",
            "yes" if run.p100_found else "no",
        ]
        for run in runs
    ]
    table = markdown_table(
        [
            "render",
            "pages",
            "CER median",
            "CER mean",
            "CER worst page",
            "CER median, spaces ignored",
            "s/page median",
            "pages/s",
            "peak worker RSS (MB)",
            "'P100' read",
        ],
        rows,
    )
    per_page = markdown_table(
        ["page", *[f"CER {run.dpi} dpi" for run in runs]],
        [
            [runs[0].page_numbers[index], *[f"{run.cer[index]:.3f}" for run in runs]]
            for index in range(min(run.pages for run in runs))
        ],
    )
    page_list = ", ".join(str(number) for number in runs[0].page_numbers)
    return f"""## OCR (scanned PDFs and images)

Command: `nice -n 10 {command_line("benchmarks.ocr_bench", argv)}`

Pages {page_list} of the attention paper, rendered to images and saved as an image-only PDF
in memory, read back through the real loader (parser worker, one OCR job per page,
RapidOCR with its bundled PP-OCRv4 models on ONNX Runtime, {OCR_THREADS} threads). Baseline: the
paper's own text layer. CER = character edit distance / text-layer length, whitespace
collapsed; "spaces ignored" removes all whitespace first (the bundled recogniser is
Chinese-English and glues some English words; we re-split long glued runs). Peak worker
RSS is the larger of the two parser workers' resident memory, polled every {MEMORY_POLL_S} s.
The resolutions run at the same time, one worker each, so they share the same load.

{table}

Per page:

{per_page}

Both resolutions run at once on the machine's two cores, each worker with two ONNX Runtime
threads, so a page's seconds are those of about half the machine.

Machine: {machine}
"""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description="OCR CER vs the text layer, speed, memory.")
    parser.add_argument("--dpi", type=int, nargs="+", default=[150, 200])
    parser.add_argument("--pages", type=int, nargs="+", default=list(range(1, 16)))
    parser.add_argument("--output", type=Path, default=None, help="also write the section here")
    args = parser.parse_args(argv)
    machine = describe_machine(2).describe()
    references = text_layer(args.pages)
    # The resolutions run side by side, one parser worker each (the pool has two), so
    # both see the same load on the shared cores.
    progress(f"OCR of {len(args.pages)} pages at {args.dpi} dpi, side by side")
    with PeakMemory() as memory, ThreadPoolExecutor(max_workers=len(args.dpi)) as threads:
        runs = list(threads.map(lambda dpi: measure(args.pages, dpi, references, memory), args.dpi))
    for run in runs:
        progress(f"{run.dpi} dpi: {run.seconds:.0f} s, median CER {statistics.median(run.cer):.3f}")
    write_report(report(runs, argv, machine), args.output)
    figures = [
        Figure(
            "OCR",
            f"scanned attention paper, median character error rate ({run.dpi} dpi)",
            statistics.median(run.cer),
            higher_is_better=False,
            headline=index == 0,
        )
        for index, run in enumerate(runs)
    ]
    command = command_line("benchmarks.ocr_bench", argv)
    write_results(args.output, figures, command=command, machine=machine)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
