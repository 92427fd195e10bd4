"""The CPU embedder's memory under inputs of ever new shapes, per oneDNN cache capacity.

Every distinct input shape (batch size x token count) makes oneDNN compile a bf16 matmul
kernel and keep it in its primitive cache, and leaves freed activations that glibc keeps
in the heap unless asked to trim; a server embedding uploads and answers of every length
meets new shapes for a long time. "trim": the embedder calls malloc_trim after each call
of 16 or more texts (rag/embedding.py); "no trim" is the embedder before that. Each
configuration runs in a fresh process: the same seeded sequence of batches (1-40 texts of
1-200 words), RSS above the level after one warm-up batch, every 25 batches, and the wall
time.

    .venv/bin/python -m benchmarks.shape_memory_bench --output docs/benchmarks/shape-memory.md
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.common import command_line, describe_machine, progress, write_report

SEED = 0
REPORT_EVERY = 25
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dogs",
    "while",
    "seven",
    "wizards",
    "quietly",
    "hex",
]
MIB = 1024 * 1024
# name -> environment: the setting's default (64), oneDNN's own default, and for
# comparison a fixed glibc mmap threshold (large buffers never stay in the heap).
NO_TRIM = "BENCH_NO_TRIM"  # the child leaves freed memory in the heap, as before
CONFIGURATIONS: dict[str, dict[str, str]] = {
    "before: oneDNN's cache (1024), no trim": {"PGPT_ONEDNN_CACHE_CAPACITY": "0", NO_TRIM: "1"},
    "cache 64, no trim": {NO_TRIM: "1"},
    "oneDNN's cache (1024), trim": {"PGPT_ONEDNN_CACHE_CAPACITY": "0"},
    "today: cache 64 (PGPT_ONEDNN_CACHE_CAPACITY), trim": {},
    "cache 64, no trim, MALLOC_MMAP_THRESHOLD_=4 MiB": {
        NO_TRIM: "1",
        "MALLOC_MMAP_THRESHOLD_": str(4 * MIB),
    },
}


def measure(batches: int) -> list[tuple[int, float, float]]:
    """In this process: (batches done, RSS growth MiB, seconds) every REPORT_EVERY."""
    import psutil

    from core.settings import load_settings
    from rag import embedding
    from rag.embedding import make_embedder

    if os.environ.get(NO_TRIM):
        embedding.release_freed_memory = lambda: None  # type: ignore[attr-defined]

    embedder = make_embedder(load_settings(threads=1))
    process = psutil.Process()
    embedder.embed(["warm up"])
    base = process.memory_info().rss
    rng = random.Random(SEED)
    started = time.perf_counter()
    points = []
    for number in range(1, batches + 1):
        texts = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 200)))
            for _ in range(rng.randint(1, 40))
        ]
        embedder.embed(texts)
        if number % REPORT_EVERY == 0:
            growth = (process.memory_info().rss - base) / MIB
            points.append((number, growth, time.perf_counter() - started))
    return points


def run(name: str, batches: int) -> list[tuple[int, float, float]]:
    environment = {**os.environ, **CONFIGURATIONS[name]}
    environment.pop("ONEDNN_PRIMITIVE_CACHE_CAPACITY", None)  # the setting decides
    output = subprocess.run(
        [sys.executable, "-m", "benchmarks.shape_memory_bench", "--child", str(batches)],
        env=environment,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [tuple(point) for point in json.loads(output.splitlines()[-1])]  # type: ignore[misc]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--output", type=Path, default=None, help="also write the report here")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(measure(args.child)))
        return 0
    machine = describe_machine(threads=1)
    results = {}
    for name in CONFIGURATIONS:
        progress(f"{name}: {args.batches} batches ...")
        results[name] = run(name, args.batches)
    checkpoints = [n for n, _, _ in next(iter(results.values()))]
    header = " | ".join(f"RSS growth after {n} batches" for n in checkpoints)
    lines = [
        "## Embedder memory under new input shapes",
        "",
        f"Produced by `{command_line('benchmarks.shape_memory_bench', argv)}`. Each "
        f"configuration in a fresh process, the same {args.batches} batches (seed {SEED}: "
        "1-40 texts of 1-200 words, nearly every batch a new shape), one torch thread.",
        "",
        f"| configuration | {header} | seconds |",
        "|---|" + "---|" * (len(checkpoints) + 1),
    ]
    for name, points in results.items():
        growth = " | ".join(f"{g:,.0f} MiB" for _, g, _ in points)
        lines.append(f"| {name} | {growth} | {points[-1][2]:.0f} |")
    lines += ["", f"Machine: {machine.describe()}"]
    write_report("\n".join(lines), args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
