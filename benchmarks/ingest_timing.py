"""Time per document for parsing and chunking (no embedding), next to LangChain's baseline.

Ours: load_document (worker pool already warm) + TokenChunker with the real tokenizer.
Baseline: PyPDFLoader + RecursiveCharacterTextSplitter(1000, 200) on characters.
Median of --repeats runs per document.

    .venv/bin/python -m benchmarks.ingest_timing
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from benchmarks.common import PDFS
from core.settings import load_settings
from ingest.chunking import TokenChunker
from ingest.loader import get_parser_pool, load_document
from ingest.pdf import parse_pdf
from rag.embedding import make_embedder
from rag.pipeline import make_chunker

DOCUMENTS = ["attention-is-all-you-need.pdf", "federal-register-2020-17221.pdf", "crazyones.pdf"]


def median_seconds(action: Callable[[], object], repeats: int) -> float:
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def langchain_baseline(path: Path) -> int:
    from langchain_community.document_loaders import PyPDFLoader
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    pages = PyPDFLoader(str(path)).load()
    return len(
        RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(pages)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    settings = load_settings()
    embedder = make_embedder(settings)
    chunker = make_chunker(settings, embedder)
    get_parser_pool().warm_up()
    print(
        f"chunk size {chunker.chunk_size} tokens, overlap {chunker.chunk_overlap}; "
        f"median of {args.repeats} runs, milliseconds per document\n"
    )
    print(
        "| document | pages | chars | chunks | parse in-process | load_document (worker) "
        "| chunking | ours total | pages/s | LangChain baseline | pages/s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in DOCUMENTS:
        print(time_document(name, chunker, settings.max_upload_bytes, args.repeats))


def time_document(name: str, chunker: TokenChunker, max_bytes: int, repeats: int) -> str:
    data = (PDFS / name).read_bytes()
    load = partial(load_document, data, name, max_bytes=max_bytes, max_pages=2000, timeout_s=60)
    doc = load()
    chunks = chunker.split(doc, "d")
    parse_s = median_seconds(partial(parse_pdf, data, name, max_pages=2000), repeats)
    load_s = median_seconds(load, repeats)
    chunk_s = median_seconds(partial(chunker.split, doc, "d"), repeats)
    # PyPDFLoader only reads paths; the baseline gets a temporary copy of the public file.
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / name
        copy.write_bytes(data)
        baseline_s = median_seconds(partial(langchain_baseline, copy), repeats)
    total_s = load_s + chunk_s
    chars = sum(len(page.text) for page in doc.pages)
    return (
        f"| {name} | {doc.page_count} | {chars} | {len(chunks)} | {parse_s * 1000:.0f} "
        f"| {load_s * 1000:.0f} | {chunk_s * 1000:.0f} | {total_s * 1000:.0f} "
        f"| {doc.page_count / total_s:.0f} | {baseline_s * 1000:.0f} "
        f"| {doc.page_count / baseline_s:.0f} |"
    )


if __name__ == "__main__":
    main()
