"""Shared benchmark plumbing: data, the machine, statistics, tables and report files."""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks import data

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Documents come from the checksummed cache that `make data` fills (benchmarks/data.py).
PDFS = data.root() / "pdfs"
COVIDQA = data.root() / "covidqa" / "200423_covidQA.json"

_SPACE = re.compile(r"\s+")


# --- COVID-QA ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Article:
    filename: str
    text: str


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    answers: tuple[str, ...]  # normalized, see normalize()
    article: int  # index into the article list


def load_covidqa(
    path: Path = COVIDQA, *, articles: int | None = None
) -> tuple[list[Article], list[Question]]:
    """The first ``articles`` articles (all when None) and the questions about them."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    chosen = data if articles is None else data[:articles]
    documents: list[Article] = []
    questions: list[Question] = []
    for number, entry in enumerate(chosen):
        # The file has no titles; every entry is one article in one paragraph.
        context = "\n\n".join(paragraph["context"] for paragraph in entry["paragraphs"])
        documents.append(Article(filename=f"covidqa-{number:03d}.txt", text=context))
        for paragraph in entry["paragraphs"]:
            for qa in paragraph["qas"]:
                answers = tuple(
                    dict.fromkeys(
                        normalize(a["text"]) for a in qa["answers"] if normalize(a["text"])
                    )
                )
                if answers:
                    questions.append(Question(qa["question"], answers, number))
    return documents, questions


def in_calibration_half(article: int) -> bool:
    """COVID-QA's articles split in two for fitting and checking answer policies: the
    quote confidence was fitted on the even-numbered articles' questions."""
    return article % 2 == 0


def normalize(text: str) -> str:
    """Case- and whitespace-insensitive form used to match answers inside chunks."""
    return _SPACE.sub(" ", text).strip().lower()


def first_hit_rank(passages: Sequence[str], answers: Sequence[str]) -> int | None:
    """1-based rank of the first passage containing any answer, or None."""
    for rank, passage in enumerate(passages, start=1):
        text = normalize(passage)
        if any(answer in text for answer in answers):
            return rank
    return None


# --- statistics ----------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def paired_ratio(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """Median of per-round ratios: robust to load that drifts between rounds."""
    return median([a / b for a, b in zip(numerators, denominators, strict=True) if b > 0])


# --- the machine and the report -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Machine:
    cpu: str
    logical_cpus: int
    threads: int
    ram_gib: float
    python: str
    torch: str
    cpu_capability: str
    load_at_start: tuple[float, float, float]

    def describe(self) -> str:
        load = ", ".join(f"{x:.1f}" for x in self.load_at_start)
        end = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        return (
            f"{self.cpu}, {self.logical_cpus} cores, CPU only (no GPU), "
            f"{self.ram_gib:.0f} GiB RAM; Python {self.python}, torch {self.torch} "
            f"({self.cpu_capability}); {self.threads} torch/FAISS threads, "
            f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
            f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}. "
            f"Load average (1/5/15 min) at start {load}, at end {end}: the cores were shared "
            "with other work, so compare the side-by-side ratios and medians, not absolute times."
        )


def describe_machine(threads: int) -> Machine:
    import psutil
    import torch

    return Machine(
        cpu=_cpu_model(),
        logical_cpus=os.cpu_count() or 0,
        threads=threads,
        ram_gib=psutil.virtual_memory().total / 1024**3,
        python=platform.python_version(),
        torch=torch.__version__,
        cpu_capability=torch.backends.cpu.get_cpu_capability(),
        load_at_start=os.getloadavg(),
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def command_line(module: str, argv: Sequence[str]) -> str:
    return shlex.join([".venv/bin/python", "-m", module, *argv])


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_report(text: str, output: Path | None) -> None:
    print(text)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n", encoding="utf-8")
        progress(f"wrote {output}")


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
