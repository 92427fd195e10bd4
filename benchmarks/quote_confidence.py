"""How sure is a quote? The quote confidence, fitted on half of COVID-QA's articles.

Every COVID-QA question is answered in quote mode over its own article (real loader,
chunker, embedder, hybrid retrieval, top 5). For each answer this records what
``rag.extract.confidence_features`` reads from the best sentence and whether the quoted
answer contains the gold text. A logistic model is fitted on the questions of the
even-numbered articles (calibration); the odd-numbered ones are the held-out check. The
fitted weights are the constants in rag/extract.py; the report compares the model with
the quote's own ranking score as a threshold.

    .venv/bin/python -m benchmarks.quote_confidence --output docs/benchmarks/quote-confidence.md
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.answer_bench import DocumentSessions
from benchmarks.answer_sets import article_documents, contains_gold
from benchmarks.common import (
    Stopwatch,
    command_line,
    describe_machine,
    in_calibration_half,
    load_covidqa,
    markdown_table,
    progress,
    write_report,
)
from benchmarks.embedding_cache import CachingEmbedder
from core.settings import load_settings
from rag.embedding import configure_threads, make_embedder, resolve_batch_size
from rag.extract import (
    CONFIDENCE_BIAS,
    CONFIDENCE_WEIGHTS,
    QuoteExtractor,
    best_quotes,
    confidence_features,
    quoted_answer,
)
from serving.wiring import build_services

TOP_K = 5
CONFIDENCE_THRESHOLDS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9)
SCORE_THRESHOLDS = (0.0, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85)


@dataclass(frozen=True, slots=True)
class Example:
    article: int
    correct: bool  # the quoted answer contains the gold text
    score: float  # the best sentence's ranking score
    features: dict[str, float]


async def collect() -> list[Example]:
    settings = load_settings(threads=1)
    embedder = CachingEmbedder.ours(make_embedder(settings), resolve_batch_size(settings))
    services = build_services(settings, embedder=embedder)
    articles, questions = load_covidqa()
    sessions = DocumentSessions(services.store, services.ingestor, article_documents(articles))
    extractor = QuoteExtractor(embedder)
    examples: list[Example] = []
    try:
        for number, question in enumerate(questions, 1):
            session = sessions.session(question.article)
            hits = await services.answers.search(session, question.text, TOP_K)
            scored = extractor.scored(question.text, hits) if hits else []
            if scored:
                answer = quoted_answer(best_quotes(scored))
                examples.append(
                    Example(
                        question.article,
                        contains_gold(answer, question.answers),
                        scored[0].score,
                        confidence_features(question.text, scored),
                    )
                )
            if number % 200 == 0:
                progress(f"  {number}/{len(questions)} questions")
    finally:
        embedder.save()
    return examples


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 50) -> np.ndarray:
    """Weights (bias last) of an L2-regularised logistic regression, by Newton's method."""
    design = np.hstack([x, np.ones((len(x), 1))])
    weights = np.zeros(design.shape[1])
    penalty = l2 * np.eye(design.shape[1])
    penalty[-1, -1] = 0.0  # the bias is not shrunk
    for _ in range(steps):
        p = 1 / (1 + np.exp(-design @ weights))
        gradient = design.T @ (p - y) + penalty @ weights
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + penalty
        weights -= np.linalg.solve(hessian, gradient)
    return weights


def fit_raw(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Fitted on standardised features, returned for the raw ones (weights, bias)."""
    mean, std = x.mean(0), x.std(0) + 1e-9
    weights = fit_logistic((x - mean) / std, y)
    raw = weights[:-1] / std
    return raw, float(weights[-1] - np.sum(raw * mean))


def curve_rows(
    values: np.ndarray,
    correct: np.ndarray,
    halves: dict[str, np.ndarray],
    thresholds: Sequence[float],
) -> list[list[object]]:
    rows: list[list[object]] = []
    for threshold in thresholds:
        cells: list[object] = [f"{threshold:.2f}"]
        for mask in halves.values():
            shown = mask & (values >= threshold)
            n = int(mask.sum())
            wrong = 1 - correct[shown].mean() if shown.any() else float("nan")
            cells += [f"{shown.sum() / n:.3f}", f"{correct[shown].sum() / n:.3f}", f"{wrong:.3f}"]
        rows.append(cells)
    return rows


def auc(values: np.ndarray, correct: np.ndarray) -> float:
    """Probability that a right answer scores above a wrong one (ties count half)."""
    right, wrong = values[correct == 1], values[correct == 0]
    above = (right[:, None] > wrong[None, :]).sum() + 0.5 * (right[:, None] == wrong[None, :]).sum()
    return float(above / (len(right) * len(wrong)))


def report(examples: Sequence[Example], argv: Sequence[str], machine: str, minutes: float) -> str:
    names = list(CONFIDENCE_WEIGHTS)
    x = np.array([[e.features[n] for n in names] for e in examples])
    y = np.array([e.correct for e in examples], dtype=float)
    calibration = np.array([in_calibration_half(e.article) for e in examples])
    halves = {"calibration": calibration, "held-out": ~calibration}
    refit, refit_bias = fit_raw(x[calibration], y[calibration])
    shipped = np.array([CONFIDENCE_WEIGHTS[n] for n in names])
    confidence = 1 / (1 + np.exp(-(x @ shipped + CONFIDENCE_BIAS)))
    score = np.array([e.score for e in examples])
    headers = ["threshold"] + [
        f"{half}: {column}"
        for half in halves
        for column in ("shown", "contains gold", "false support")
    ]
    weights = markdown_table(
        ["feature", "shipped weight", "refitted in this run"],
        [[f"`{n}`", f"{w:.3f}", f"{r:.3f}"] for n, w, r in zip(names, shipped, refit, strict=True)]
        + [["bias", f"{CONFIDENCE_BIAS:.3f}", f"{refit_bias:.3f}"]],
    )
    held = ~calibration
    return f"""## Quote confidence: when is a quote an answer? (COVID-QA, issue #10)

Command: `{command_line("benchmarks.quote_confidence", argv)}` ({minutes:.0f} min).
All {len(examples)} COVID-QA questions with passages, each over its own article (real
loader, chunker, embedder, hybrid retrieval, top 5), answered in quote mode; *correct*:
the quoted answer contains the gold text ({y.mean():.3f} of them). The confidence is a
logistic model of the best sentence (`rag.extract.confidence_features`), fitted on the
questions of the even-numbered articles ({int(calibration.sum())}, calibration) and checked on
the odd-numbered ones ({int(held.sum())}, held-out). *shown*, *contains gold*: shares of the
half's questions; *false support*: the share of shown answers without the gold text.

{weights}

Ranking quality on the held-out half (AUC: the chance a right answer ranks above a wrong
one): confidence **{auc(confidence[held], y[held]):.3f}**, the quote's ranking score alone
{auc(score[held], y[held]):.3f}.

### Thresholds on the confidence (`PGPT_QUOTE_MIN_CONFIDENCE`)

{markdown_table(headers, curve_rows(confidence, y, halves, CONFIDENCE_THRESHOLDS))}

### The same with the quote's ranking score as the threshold (before)

{markdown_table(headers, curve_rows(score, y, halves, SCORE_THRESHOLDS))}

{machine}
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, help="write the markdown report here")
    args = parser.parse_args(argv)
    argv = list(argv) if argv is not None else sys.argv[1:]
    configure_threads(1)
    machine = describe_machine(1)
    clock = Stopwatch()
    examples = asyncio.run(collect())
    write_report(report(examples, argv, machine.describe(), clock.elapsed() / 60), args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
