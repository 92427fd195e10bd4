"""Verifier quality on the labelled COVID-QA claim set (benchmarks/claimset.py).

Precision, recall and F1 of the label ``supported`` on the held-out half of the
articles, for the first rule (before: score >= 0.62, no question), the previous rule
(absolute topicality >= 1.3) and the calibrated rule in rag/verification.py (after).
``--calibrate`` also fits the topicality weights and cut on the calibration half and
prints them (they are then written into rag/verification.py by hand, so the product
never depends on this run). ``--evidence-cache`` keeps the embedding vectors (about 5
minutes on one thread to build) so that later runs take seconds. With ``--output`` the
held-out precision and recall also go to docs/benchmarks/results/verifier.json
(benchmarks/results.py), from which `benchmarks.assemble_docs` builds the figures table.

    .venv/bin/python -m benchmarks.verifier_bench --evidence-cache /tmp/verifier-evidence.npz \
        --output docs/benchmarks/verifier.md
    .venv/bin/python -m benchmarks.verifier_bench --evidence-cache /tmp/verifier-evidence.npz \
        --calibrate
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.claimset import LabelledClaim, build_claims, summary
from benchmarks.common import (
    Stopwatch,
    command_line,
    describe_machine,
    markdown_table,
    progress,
    write_report,
)
from benchmarks.embedding_cache import CachedVectors, CachingEmbedder, probe_vector
from benchmarks.results import Figure, write_results
from core.settings import load_settings
from rag import verification
from rag.embedding import configure_threads, make_embedder, resolve_batch_size
from rag.verification import (
    CitationVerifier,
    Evidence,
    Support,
    decide,
    passage_windows,
)

LEGACY_SUPPORTED_AT = 0.62  # the threshold before this benchmark existed
TARGET_PRECISION = 0.95
RULES: tuple[tuple[str, Callable[[Evidence], bool]], ...] = ()  # set below the rules
HEADERS = ["half", "rule", "precision", "recall", "F1", "supported positives", "false supported"]


@dataclass(frozen=True, slots=True)
class Scores:
    precision: float
    recall: float
    f1: float
    true_positives: int
    false_positives: int
    positives: int


def legacy_supported(evidence: Evidence) -> bool:
    """Today's rule: score >= 0.62, blind to the question, echoes and fragments."""
    return evidence.score >= LEGACY_SUPPORTED_AT


def calibrated_supported(evidence: Evidence) -> bool:
    return decide(evidence) is Support.SUPPORTED


def scores(labels: Sequence[bool], predicted: Sequence[bool]) -> Scores:
    tp = sum(1 for y, p in zip(labels, predicted, strict=True) if y and p)
    fp = sum(1 for y, p in zip(labels, predicted, strict=True) if not y and p)
    positives = sum(labels)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / positives if positives else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(precision, recall, f1, tp, fp, positives)


def collect_evidence(verifier: CitationVerifier, claims: Sequence[LabelledClaim]) -> list[Evidence]:
    """Evidence of every claim against its passage, one embedding batch per question."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, claim in enumerate(claims):
        groups[(claim.question, claim.passage)].append(i)
    found: list[Evidence | None] = [None] * len(claims)
    timer = Stopwatch()
    for done, ((question, passage), members) in enumerate(groups.items(), 1):
        texts = [claims[i].claim for i in members]
        for i, evidence in zip(
            members,
            verifier.evidence(texts, [[1]] * len(texts), [passage], question),
            strict=True,
        ):
            found[i] = evidence
        if done % 200 == 0:
            progress(f"  {done}/{len(groups)} questions, {timer.elapsed():.0f} s")
    return [e for e in found if e is not None]


def previous_supported(evidence: Evidence) -> bool:
    """The rule before the relative topicality: cosine with the question + share of its
    words >= 1.3, besides the same checks of echo, fragment, score and unbacked words."""
    return backed(evidence) and evidence.relevance + evidence.question_coverage >= 1.3


def backed(
    evidence: Evidence,
    supported_at: float = verification.SUPPORTED_AT,
    max_unbacked: int = verification.MAX_UNBACKED_WORDS,
) -> bool:
    """All the checks of ``decide`` but the question's: a real statement its passage makes."""
    return (
        not evidence.echo
        and not evidence.content_free
        and evidence.score >= supported_at
        and evidence.unbacked_words <= max_unbacked
    )


RULES = (
    ("before (0.62)", legacy_supported),
    ("previous (topicality >= 1.3)", previous_supported),
    ("after", calibrated_supported),
)
TOPICALITY_FEATURES = ("lead_cosine", "lead_words", "relevance", "question_words")
TOPICALITY_CONSTANTS = (
    "TOPICALITY_BIAS",
    "LEAD_COSINE_WEIGHT",
    "LEAD_WORDS_WEIGHT",
    "RELEVANCE_WEIGHT",
    "QUESTION_WORDS_WEIGHT",
)


def fit_logistic(x: np.ndarray, y: np.ndarray, c: float = 1.0, steps: int = 30) -> np.ndarray:
    """Bias and weights of an L2-regularised logistic regression (1/c, bias free), by Newton."""
    a = np.hstack([np.ones((len(x), 1)), x])
    penalty = np.eye(a.shape[1]) / c
    penalty[0, 0] = 0.0
    w = np.zeros(a.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(a @ w)))
        gradient = a.T @ (p - y) + penalty @ w
        hessian = (a.T * (p * (1 - p))) @ a + penalty
        w -= np.linalg.solve(hessian, gradient)
    return w


def calibrate(
    labels: Sequence[bool], evidence: Sequence[Evidence]
) -> tuple[dict[str, float], Scores]:
    """Topicality weights and cut with the best recall at precision >= the target.

    The weights are a logistic regression, on the claims that pass every other check, of
    the label over TOPICALITY_FEATURES; the cut is the lowest logit that keeps precision
    over the whole calibration half at the target (MIN_RELEVANCE applied).
    """
    kept = [i for i, e in enumerate(evidence) if backed(e)]
    x = np.array([[getattr(evidence[i], f) for f in TOPICALITY_FEATURES] for i in kept])
    y = np.array([float(labels[i]) for i in kept])
    w = np.round(fit_logistic(x, y), 3)
    logits = {i: float(w[0] + w[1:] @ row) for i, row in zip(kept, x, strict=True)}
    floor = verification.MIN_RELEVANCE
    best: tuple[dict[str, float], Scores] | None = None
    for cut in sorted({round(v, 3) for v in logits.values()}):
        predicted = [
            i in logits and logits[i] >= cut and e.relevance + e.question_coverage >= floor
            for i, e in enumerate(evidence)
        ]
        result = scores(labels, predicted)
        if result.precision >= TARGET_PRECISION and (
            best is None or result.recall > best[1].recall
        ):
            chosen = dict(zip(TOPICALITY_CONSTANTS, w.tolist(), strict=True))
            best = (chosen | {"MIN_TOPICALITY": cut}, result)
    if best is None:
        raise ValueError("no cut reaches the target precision on the calibration half")
    return best


def by_kind(
    claims: Sequence[LabelledClaim], evidence: Sequence[Evidence], rule: Callable[[Evidence], bool]
) -> dict[str, float]:
    """Share of claims of each kind labelled supported by ``rule``."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for claim, found in zip(claims, evidence, strict=True):
        counts[claim.kind][0] += rule(found)
        counts[claim.kind][1] += 1
    return {kind: hits / total for kind, (hits, total) in sorted(counts.items())}


def report(
    claims: Sequence[LabelledClaim],
    evidence: Sequence[Evidence],
    argv: Sequence[str],
    machine: str,
    seconds: float,
) -> str:
    rows = []
    halves: dict[str, list[int]] = defaultdict(list)
    for i, claim in enumerate(claims):
        halves[claim.split].append(i)
    for split in ("calibration", "held-out"):
        members = halves[split]
        labels = [claims[i].supported for i in members]
        for name, rule in RULES:
            s = scores(labels, [rule(evidence[i]) for i in members])
            rows.append(
                [
                    split,
                    name,
                    f"{s.precision:.3f}",
                    f"{s.recall:.3f}",
                    f"{s.f1:.3f}",
                    f"{s.true_positives}/{s.positives}",
                    s.false_positives,
                ]
            )
    held = [i for i in halves["held-out"]]
    held_claims = [claims[i] for i in held]
    held_evidence = [evidence[i] for i in held]
    shares = [by_kind(held_claims, held_evidence, rule) for _, rule in RULES]
    kinds = markdown_table(
        ["claim kind (held-out)", "label", "count"] + [f"supported {name}" for name, _ in RULES],
        [
            [
                kind,
                "supported" if kind.startswith("answer") else "not supported",
                sum(1 for c in held_claims if c.kind == kind),
            ]
            + [f"{share[kind]:.3f}" for share in shares]
            for kind in shares[0]
        ],
    )
    counts = markdown_table(
        ["split", "kind", "claims"], [list(row) for row in summary(list(claims))]
    )
    constants = (
        "SUPPORTED_AT",
        "MAX_UNBACKED_WORDS",
        "MIN_CONTENT_WORDS",
        "SEMANTIC_WEIGHT",
        *TOPICALITY_CONSTANTS,
        "MIN_TOPICALITY",
        "MIN_RELEVANCE",
    )
    thresholds = ", ".join(f"{name}={getattr(verification, name)}" for name in constants)
    return f"""## Verifier: precision and recall of `supported` on COVID-QA claims

Command: `{command_line("benchmarks.verifier_bench", argv)}` ({seconds:.0f} s).

Claims built by `benchmarks/claimset.py` from COVID-QA (`../shared/data/covidqa/`): per
question, a passage of about one chunk around the answer and claims checked against it.
Positives: the context sentence holding the answer span, and its clause holding the span.
Negatives: that sentence with a number/name/word of the answer swapped for one of the
same kind from the same article (not in the passage), the closest sentence of another
article, the question echoed (plain and as "Question: ..."), a content-free fragment
("The virus's genome."), and another sentence of the same passage that does not hold the
answer (true but off-topic). Articles are split in halves with a fixed seed: thresholds
were chosen on the calibration half (`--calibrate`); the held-out rows are the ones that
matter.

**Before** is the first rule (0.5 x embedding cosine + 0.5 x content-word coverage >= 0.62,
numbers verbatim). **After** is rag/verification.py: {thresholds}. A supported claim must
not echo the question nor be a content-free fragment, must add no content word that is in
neither its passage nor the question (this is what stops swapped names and words), and must
address the question. **Previous** asked for an absolute topicality (cosine with the
question + share of the question's content words in the claim) >= 1.3; **after** asks that
a logistic score reach MIN_TOPICALITY: mostly how far the passage sentence the claim
stands on leads the passage's other sentences in cosine with the question and in
idf-weighted share of the question's words (idf over the passage's sentences), plus the
claim's own cosine with the question and weighted share of its words; and, as a floor,
cosine + share >= MIN_RELEVANCE. Weights and cut were fitted on the calibration half
(`--calibrate`, cut at precision >= {TARGET_PRECISION}). Target: precision >=
{TARGET_PRECISION} at recall >= 0.70 on held-out. The texts were embedded once
(`--evidence-cache`: vectors keyed by text hashes, no text) and re-decided for each rule.

{markdown_table(HEADERS, rows)}

Share labelled `supported` by claim kind:

{kinds}

Claim counts:

{counts}

Machine: {machine}
"""


def all_texts(claims: Sequence[LabelledClaim]) -> list[str]:
    """Every text the verifier embeds for the claim set: claims, questions, windows."""
    texts: dict[str, None] = {}
    for claim in claims:
        texts[claim.claim] = texts[claim.question] = None
    for passage in dict.fromkeys(c.passage for c in claims):
        for start, end in passage_windows(passage):
            texts[passage[start:end]] = None
    return list(texts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, help="write the markdown report here")
    parser.add_argument(
        "--calibrate", action="store_true", help="search thresholds on the calibration half"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--evidence-cache",
        type=Path,
        help=(
            "file of the embedding vectors (with text hashes, no text), to re-decide fast; "
            "the embedder's name and dtype are added to the file name"
        ),
    )
    args = parser.parse_args(argv)
    argv = list(argv) if argv is not None else sys.argv[1:]
    configure_threads(args.threads)
    machine = describe_machine(args.threads)
    timer = Stopwatch()
    claims = build_claims()
    progress(f"{len(claims)} claims")
    inner = make_embedder(load_settings(threads=args.threads))
    cache = args.evidence_cache
    if cache is not None:  # vectors of one embedder are no use to another
        model = Path(inner.name).name
        batch = resolve_batch_size(load_settings(threads=args.threads))
        cache = cache.with_name(f"{cache.stem}-{model}-{inner.dtype}-batch{batch}{cache.suffix}")
    embedder = CachingEmbedder(inner, CachedVectors(cache, inner.dimension, probe_vector(inner)))
    embedder.embed(all_texts(claims))  # every text once; the verifier then only looks up
    embedder.save()
    evidence = collect_evidence(CitationVerifier(embedder), claims)
    if args.calibrate:
        members = [i for i, c in enumerate(claims) if c.split == "calibration"]
        try:
            chosen, result = calibrate(
                [claims[i].supported for i in members], [evidence[i] for i in members]
            )
            print(f"calibration: {chosen} -> {result}")
        except ValueError as exc:
            print(exc)
    seconds = timer.elapsed()
    write_report(report(claims, evidence, argv, machine.describe(), seconds), args.output)
    command = command_line("benchmarks.verifier_bench", argv)
    write_results(
        args.output, figures(claims, evidence), command=command, machine=machine.describe()
    )
    return 0


def figures(claims: Sequence[LabelledClaim], evidence: Sequence[Evidence]) -> list[Figure]:
    """The shipped rule's precision and recall of `supported` on the held-out half."""
    held = [i for i, c in enumerate(claims) if c.split == "held-out"]
    result = scores(
        [claims[i].supported for i in held], [calibrated_supported(evidence[i]) for i in held]
    )
    return [
        Figure(
            "Verifier",
            "COVID-QA held-out precision of `supported`",
            result.precision,
            headline=True,
        ),
        Figure("Verifier", "COVID-QA held-out recall of `supported`", result.recall, headline=True),
    ]


if __name__ == "__main__":
    raise SystemExit(main())
