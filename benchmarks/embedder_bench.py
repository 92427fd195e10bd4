"""Embedding speed and agreement of the embedding backends (torch, onnx, onnx-int8, openvino-int8).

The chunks are a real filing's, made by the product's own path (load_document, the
chunker, each chunk's indexed text with its context header): what an upload embeds.
Every backend embeds the same chunks in alternating rounds (the order rotates each
round), so all meet the same load; the report gives medians and paired ratios.

    .venv/bin/python -m benchmarks.embedder_bench --output NOTES-speed.md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

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
from core.settings import Settings, load_settings
from ingest.loader import load_document
from rag.embedding import (
    Embedder,
    SentenceTransformerEmbedder,
    make_embedder,
    resolve_batch_size,
)
from rag.pipeline import make_chunker

FILING = "financebench-dev/pdfs/BESTBUY_2023_10K.pdf"
QUESTIONS = "financebench-dev/questions.jsonl"
BACKENDS = ("torch", "onnx", "onnx-int8", "openvino-int8")


def filing_chunks(settings: Settings, embedder: Embedder, path: Path, count: int) -> list[str]:
    """The first ``count`` chunks of the filing, as the ingestor embeds them."""
    document = load_document(
        path.read_bytes(),
        path.name,
        max_bytes=settings.max_upload_bytes,
        max_pages=settings.max_pages,
        timeout_s=600,
        pdf_text_mode=settings.pdf_text_mode,
        ocr=False,
    )
    chunks = make_chunker(settings, embedder).split(document, "bench")
    return [chunk.indexed_text for chunk in chunks[:count]]


def questions(count: int) -> list[str]:
    """Real questions, embedded one at a time as a search does."""
    lines = data.path(QUESTIONS).read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()][:count]


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    backends = args.backends.split(",")
    machine = describe_machine(args.threads)
    settings = load_settings(threads=args.threads)
    embedders = {
        name: make_embedder(settings.model_copy(update={"embedding_backend": name}))
        for name in backends
    }
    reference = SentenceTransformerEmbedder(
        settings.embedding_model,
        device="cpu",
        dtype="float32",
        batch_size=resolve_batch_size(settings.model_copy(update={"embedding_backend": "torch"})),
    )
    texts = filing_chunks(settings, reference, data.path(FILING), args.chunks)
    tokens = [reference.count_tokens(text) for text in texts]
    progress(f"{len(texts)} chunks, {median(tokens):.0f} tokens median")

    expected = reference.embed(texts)
    agreement: dict[str, np.ndarray] = {}
    for name, embedder in embedders.items():  # also the warm-up of every backend
        agreement[name] = np.einsum("ij,ij->i", embedder.embed(texts), expected)

    asked = questions(args.questions)
    rates: dict[str, list[float]] = {name: [] for name in backends}
    latencies: dict[str, list[float]] = {name: [] for name in backends}
    for round_number in range(args.rounds):
        shift = round_number % len(backends)
        for name in backends[shift:] + backends[:shift]:
            started = time.perf_counter()
            embedders[name].embed(texts)
            rates[name].append(len(texts) / (time.perf_counter() - started))
            for question in asked:
                started = time.perf_counter()
                embedders[name].embed([question])
                latencies[name].append(time.perf_counter() - started)
        progress(
            f"  round {round_number + 1}: "
            + ", ".join(f"{name} {rates[name][-1]:.1f}" for name in backends)
            + " chunks/s"
        )

    base = backends[0]
    rows = [
        [
            f"`{name}`",
            embedders[name].dtype,
            f"{median(rates[name]):.1f}",
            f"{min(rates[name]):.1f} to {max(rates[name]):.1f}",
            f"**{paired_ratio(rates[name], rates[base]):.2f}**",
            f"{median(latencies[name]) * 1000:.1f}",
            f"{agreement[name].min():.4f}",
            f"{agreement[name].mean():.4f}",
        ]
        for name in backends
    ]
    table = markdown_table(
        [
            "backend",
            "dtype",
            "chunks/s (median)",
            "range",
            f"speed vs `{base}` (median of paired rounds)",
            "ms per question (median)",
            "cosine to torch float32, worst",
            "mean",
        ],
        rows,
    )
    batches = ", ".join(
        f"{resolve_batch_size(settings.model_copy(update={'embedding_backend': name}))} ({name})"
        for name in backends
    )
    report = f"""## Embedding backends: speed and agreement

{len(texts)} chunks of {Path(FILING).name} (median {median(tokens):.0f} tokens, as ingested:
context header included), {args.rounds} alternating rounds, {args.threads} threads, batches of
{batches}; in every round each backend also embeds {len(asked)} questions
one at a time, as a search does.

{table}

Command: `{command_line("benchmarks.embedder_bench", argv)}`

Machine: {machine.describe()}
"""
    write_report(report, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
