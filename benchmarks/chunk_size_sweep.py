"""Pick chunk size and overlap by retrieval quality on a COVID-QA subset.

For each (chunk size, overlap): chunk the first N articles with the real TokenChunker,
embed the chunks with the real embedder, and for every question of those articles take
the top-k chunks by inner product over all of them. A hit is a retrieved chunk that
contains the answer text (compared with whitespace collapsed and case folded).

    .venv/bin/python -m benchmarks.chunk_size_sweep --articles 30 --sizes 128,192,254 \\
        --overlaps 0,32,64
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

from benchmarks.common import COVIDQA
from core.settings import load_settings
from ingest.chunking import TEXT_SEPARATORS, TokenChunker
from ingest.models import Chunk, ParsedDocument
from ingest.text import parse_text
from rag.embedding import Embedder, make_embedder

# Line breaks before sentence ends: what the splitter does without a sentence separator.
LINE_FIRST_SEPARATORS = [r"\n{2,}", r"\n", r" ", ""]


@dataclass(frozen=True)
class Question:
    article: int
    text: str
    answer: str


@dataclass(frozen=True)
class Result:
    separators: str
    chunk_size: int
    chunk_overlap: int
    chunks: int
    answers_inside_a_chunk: float  # the ceiling for hit@k: answers no chunk holds whole
    hit_at_1: float
    hit_at_k: float
    mrr_at_k: float
    chunk_seconds: float
    embed_seconds: float


def normalize(text: str) -> str:
    return " ".join(text.split()).casefold()


def load_subset(articles: int, skip: int) -> tuple[list[ParsedDocument], list[Question]]:
    data = json.loads(COVIDQA.read_text(encoding="utf-8"))["data"][skip : skip + articles]
    docs: list[ParsedDocument] = []
    questions: list[Question] = []
    for index, article in enumerate(data):
        paragraph = article["paragraphs"][0]
        docs.append(
            parse_text(
                paragraph["context"].encode(), f"article-{index}.txt", markdown=False, max_pages=10
            )
        )
        for qa in paragraph["qas"]:
            answer = qa["answers"][0]["text"].strip()
            if answer:
                questions.append(Question(index, qa["question"], answer))
    return docs, questions


def evaluate(
    embedder: Embedder,
    docs: list[ParsedDocument],
    questions: list[Question],
    question_vectors: np.ndarray,
    *,
    size: int,
    overlap: int,
    separators: str,
    top_k: int,
) -> Result:
    chunker = TokenChunker(
        embedder.count_tokens,
        size,
        overlap,
        separators=LINE_FIRST_SEPARATORS if separators == "line" else TEXT_SEPARATORS,
    )
    started = time.perf_counter()
    chunks: list[Chunk] = []
    for index, doc in enumerate(docs):
        chunks.extend(chunker.split(doc, str(index)))
    chunk_seconds = time.perf_counter() - started

    started = time.perf_counter()
    chunk_vectors = embedder.embed([chunk.text for chunk in chunks])
    embed_seconds = time.perf_counter() - started

    normalized = [normalize(chunk.text) for chunk in chunks]
    scores = question_vectors @ chunk_vectors.T
    ranked = np.argsort(-scores, axis=1)[:, :top_k]
    inside = hit_1 = hit_k = 0
    reciprocal_ranks = 0.0
    for question, row in zip(questions, ranked, strict=True):
        answer = normalize(question.answer)
        inside += any(
            answer in text
            for chunk, text in zip(chunks, normalized, strict=True)
            if chunk.document_id == str(question.article)
        )
        for rank, chunk_index in enumerate(row, start=1):
            if answer in normalized[chunk_index]:
                hit_1 += rank == 1
                hit_k += 1
                reciprocal_ranks += 1 / rank
                break
    total = len(questions)
    return Result(
        separators=separators,
        chunk_size=size,
        chunk_overlap=overlap,
        chunks=len(chunks),
        answers_inside_a_chunk=inside / total,
        hit_at_1=hit_1 / total,
        hit_at_k=hit_k / total,
        mrr_at_k=reciprocal_ranks / total,
        chunk_seconds=chunk_seconds,
        embed_seconds=embed_seconds,
    )


def markdown_table(results: list[Result], top_k: int) -> str:
    lines = [
        f"| separators | size | overlap | chunks | answer inside a chunk | hit@1 | hit@{top_k} "
        f"| MRR@{top_k} | chunking s | embedding s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.separators} | {r.chunk_size} | {r.chunk_overlap} | {r.chunks} "
            f"| {r.answers_inside_a_chunk:.3f} | {r.hit_at_1:.3f} | {r.hit_at_k:.3f} "
            f"| {r.mrr_at_k:.3f} | {r.chunk_seconds:.2f} | {r.embed_seconds:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=30)
    parser.add_argument("--skip", type=int, default=0, help="start after this many articles")
    parser.add_argument("--sizes", default="128,192,254")
    parser.add_argument("--overlaps", default="0,32,64")
    parser.add_argument(
        "--separators", default="sentence", help="comma list of 'sentence' and/or 'line'"
    )
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    embedder = make_embedder(load_settings())
    docs, questions = load_subset(args.articles, args.skip)
    print(f"{len(docs)} articles, {len(questions)} questions, embedder {embedder.name}")
    question_vectors = embedder.embed([q.text for q in questions])

    results: list[Result] = []
    for separators in args.separators.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            for overlap in (int(o) for o in args.overlaps.split(",")):
                result = evaluate(
                    embedder,
                    docs,
                    questions,
                    question_vectors,
                    size=min(size, embedder.max_tokens),
                    overlap=overlap,
                    separators=separators,
                    top_k=args.top_k,
                )
                results.append(result)
                print(markdown_table([result], args.top_k).splitlines()[-1], flush=True)
    print()
    print(markdown_table(results, args.top_k))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")


if __name__ == "__main__":
    main()
