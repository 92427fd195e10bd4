"""Embedding speed by batch size with the CPU default backend, on real documents.

Each document is chunked as an upload is (filing_chunks: the product's loader and chunker,
each chunk's indexed text) and embedded whole at every batch size, in alternating rounds
(the order rotates each round) so all sizes meet the same load; medians and paired ratios
against batch 64, the default before 4 Dec.

    .venv/bin/python -m benchmarks.embedding_batch --output docs/benchmarks/embedding-batch.md
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks import data
from benchmarks.common import (
    command_line,
    describe_machine,
    markdown_table,
    median,
    paired_ratio,
    progress,
    write_report,
)
from benchmarks.embedder_bench import filing_chunks
from core.settings import load_settings
from rag.embedding import configure_threads, make_embedder, resolve_backend

DOCUMENTS = (
    "pdfs/attention-is-all-you-need.pdf",
    "pdfs/federal-register-2020-17221.pdf",
    "financebench-dev/pdfs/BESTBUY_2023_10K.pdf",
    "financebench-dev/pdfs/AMAZON_2017_10K.pdf",
)
BATCH_SIZES = (4, 8, 16, 32, 64)
BASELINE = 64


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    configure_threads(args.threads)
    machine = describe_machine(args.threads)
    settings = load_settings(threads=args.threads)
    embedders = {
        size: make_embedder(settings.model_copy(update={"embedding_batch_size": size}))
        for size in BATCH_SIZES
    }
    rows = []
    for name in DOCUMENTS:
        texts = filing_chunks(settings, embedders[BASELINE], data.path(name), 10_000)
        for embedder in embedders.values():
            embedder.embed(texts[:BASELINE])  # warm-up: threads, arena
        rates: dict[int, list[float]] = {size: [] for size in BATCH_SIZES}
        for round_number in range(args.rounds):
            order = BATCH_SIZES[round_number % len(BATCH_SIZES) :]
            order += BATCH_SIZES[: round_number % len(BATCH_SIZES)]
            for size in order:
                started = time.perf_counter()
                embedders[size].embed(texts)
                rates[size].append(len(texts) / (time.perf_counter() - started))
        progress(f"{Path(name).name}: {len(texts)} chunks")
        rows += [
            [
                Path(name).name if size == BATCH_SIZES[0] else "",
                len(texts) if size == BATCH_SIZES[0] else "",
                size,
                f"{median(rates[size]):.1f}",
                f"**{paired_ratio(rates[size], rates[BASELINE]):.2f}x**",
            ]
            for size in BATCH_SIZES
        ]
    table = markdown_table(
        ["document", "chunks", "batch", "chunks/s (median)", f"vs batch {BASELINE} (paired)"],
        rows,
    )
    report = f"""## Embedding batch size on the CPU ({resolve_backend(settings)})

Command: `{command_line("benchmarks.embedding_batch", argv)}`

Each document chunked as an upload is (context headers included) and embedded whole at
each batch size; {args.rounds} alternating rounds, {args.threads} threads, medians.

{table}

Machine: {machine.describe()}
"""
    write_report(report, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
