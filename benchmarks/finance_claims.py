"""The verifier on FinanceBench's human answers (evaluation only: CC-BY-NC, nothing fitted).

FinanceBench's answers are what an analyst, or a capable model, writes from a filing's
page: figures as the table states them, computed ratios and changes, paraphrase. Each
financebench-dev question gives claims checked against pages of its filing, as the
verifier checks an answer (the answer's sentences, uncited, against the passages given):

- positive ``answer``: the human answer against its evidence page(s);
- negatives with one number changed (``digit``, ``scale`` million/billion, ``year``,
  ``sign``, ``ratio-inverted``), against the evidence pages;
- negative ``other-answer``: another question's answer about the same filing;
- negative ``wrong-page``: the answer against a page of the same filing away from its
  evidence.

An answer is labelled `supported` when every sentence of it that states something (not
a bare "Yes.") is. Pages are read by the product's PDF parser (PDFium text).

    .venv/bin/python -m benchmarks.finance_claims --output docs/benchmarks/verifier-financebench.md
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks import data
from benchmarks.common import (
    Stopwatch,
    command_line,
    describe_machine,
    markdown_table,
    progress,
    write_report,
)
from benchmarks.embedding_cache import CachedVectors, CachingEmbedder, cache_file, probe_vector
from benchmarks.results import Figure, write_results
from benchmarks.verifier_bench import scores
from core.settings import load_settings
from ingest.models import Chunk
from ingest.pdf import parse_pdf
from rag.embedding import configure_threads, make_embedder, resolve_batch_size
from rag.number_checks import Backing
from rag.numbers import quantities, stated_scale
from rag.retrieval import Hit
from rag.verification import CitationVerifier, Claim, Support, is_content_free

SEED = 20261207
PERTURBATIONS = ("digit", "scale", "year", "sign", "ratio-inverted")
MIN_PAGE_DISTANCE = 3  # a wrong page is this far from every evidence page
SUMMARY_HEADERS = [
    "claims",
    "precision of `supported`",
    "recall",
    "supported positives",
    "false supported",
    "number-changed false support",
]
KIND_HEADERS = [
    "kind",
    "label",
    "claims",
    "share labelled supported",
    "with a figure: every figure stands or follows",
]
_SCALE_SWAP = {"million": "billion", "billion": "million", "thousand": "million"}
_SCALE_WORD = re.compile(r"(?i)\b(thousand|million|billion)s?\b|\bbn\b")


@dataclass(frozen=True, slots=True)
class FinanceClaim:
    question: str
    answer: str
    pages: tuple[int, ...]  # pages of the filing the answer is checked against, from 1
    doc_name: str
    supported: bool
    kind: str


def perturbed(answer: str, kind: str, rng: random.Random, question: str = "") -> str | None:
    """The answer with one number changed in the way ``kind`` names; None if it has none.
    A bare amount takes a scale other than the one its question states ("$8.70" asked in
    billions becomes "$8.70 million": "$8.70 billion" would say the same)."""
    found = quantities(answer)
    figures = [q for q in found if not q.year]
    if kind == "year":
        years = [q for q in found if q.year]
        if not years:
            return None
        q = years[0]
        digits = re.search(r"\d{4}|\d{2}$", q.text)
        assert digits is not None
        year = int(digits.group()) + rng.choice((-1, 1))
        text = q.text[: digits.start()] + str(year)[-len(digits.group()) :]
        return answer[: q.start] + text + answer[q.end :]
    if not figures:
        return None
    q = figures[0]
    if kind == "digit":
        spots = [i for i, ch in enumerate(q.text) if ch.isdigit()]
        i = rng.choice(spots)
        choices = [d for d in "0123456789" if d != q.text[i] and not (d == "0" and i == spots[0])]
        text = q.text[:i] + rng.choice(choices) + q.text[i + 1 :]
    elif kind == "scale":
        word = _SCALE_WORD.search(q.text)
        if word is not None:
            swapped = _SCALE_SWAP.get(word.group(1).lower() if word.group(1) else "billion")
            text = q.text[: word.start()] + str(swapped) + q.text[word.end() :]
        elif q.currency:
            text = f"{q.text} {'million' if stated_scale(question) == 1e9 else 'billion'}"
        else:
            return None
    elif kind == "sign":
        text = q.text[1:] if q.value < 0 and q.text.startswith("-") else f"-{q.text}"
    else:  # ratio-inverted: a plain ratio or a percent turned around
        if q.currency or q.scaled or q.value == 0:
            return None
        inverse = 1 / q.value
        decimals = max(2, len(q.text.split(".")[1].rstrip("%")) if "." in q.text else 2)
        text = f"{inverse * 100:.{decimals}f}%" if q.percent else f"{inverse:.{decimals}f}"
    return answer[: q.start] + text + answer[q.end :]


def build_claims(
    questions: Sequence[dict[str, object]], page_counts: dict[str, int]
) -> list[FinanceClaim]:
    rng = random.Random(SEED)
    by_filing: dict[str, list[dict[str, object]]] = defaultdict(list)
    for entry in questions:
        by_filing[str(entry["doc_name"])].append(entry)
    claims = []
    for entry in questions:
        question, answer, doc = str(entry["question"]), str(entry["answer"]), str(entry["doc_name"])
        evidence = entry["evidence"]
        assert isinstance(evidence, list)
        pages = tuple(sorted({int(e["evidence_page_num"]) + 1 for e in evidence}))

        checked = [(answer, True, "answer", pages)]
        for kind in PERTURBATIONS:
            changed = perturbed(answer, kind, rng, question)
            if changed is not None and changed != answer:
                checked.append((changed, False, kind, pages))
        others = [str(o["answer"]) for o in by_filing[doc] if o is not entry]
        if others:
            checked.append((rng.choice(others), False, "other-answer", pages))
        away = [
            p
            for p in range(1, page_counts[doc] + 1)
            if all(abs(p - e) >= MIN_PAGE_DISTANCE for e in pages)
        ]
        checked.append((answer, False, "wrong-page", (rng.choice(away),)))
        claims += [FinanceClaim(question, t, on, doc, label, k) for t, label, k, on in checked]
    return claims


def answer_supported(claims: Sequence[Claim]) -> bool:
    """Every sentence that states something is supported (and there is one)."""
    stated = [c for c in claims if not is_content_free(c.text)]
    return bool(stated) and all(c.support is Support.SUPPORTED for c in stated)


def number_backing(claims: Sequence[Claim]) -> str:
    backings = [n.backing for c in claims for n in c.numbers if not n.year]
    if not backings:
        return "no figure"
    if Backing.UNBACKED in backings:
        return "a figure unbacked"
    return "figures follow" if Backing.FOLLOWS in backings else "figures stand"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, help="write the markdown report here")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    argv = list(argv) if argv is not None else sys.argv[1:]
    configure_threads(args.threads)
    timer = Stopwatch()

    folder = "financebench-dev"
    questions = [
        json.loads(line)
        for line in data.path(f"{folder}/questions.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    texts: dict[str, list[str]] = {}
    for doc in sorted({q["doc_name"] for q in questions}):
        path = data.path(f"{folder}/pdfs/{doc}.pdf")
        parsed = parse_pdf(path.read_bytes(), path.name, max_pages=5000)
        texts[doc] = [page.text for page in parsed.pages]
        progress(f"  {doc}: {len(texts[doc])} pages")
    claims = build_claims(questions, {doc: len(pages) for doc, pages in texts.items()})
    settings = load_settings(threads=args.threads)
    inner = make_embedder(settings)
    batch = resolve_batch_size(settings)
    cache = cache_file("finance-claims", Path(inner.name).name, f"{inner.dtype}-batch{batch}")
    embedder = CachingEmbedder(inner, CachedVectors(cache, inner.dimension, probe_vector(inner)))
    verifier = CitationVerifier(embedder)
    results: list[tuple[FinanceClaim, list[Claim]]] = []
    for i, item in enumerate(claims, 1):
        hits = [
            Hit(
                Chunk(
                    item.doc_name, f"{item.doc_name}.pdf", texts[item.doc_name][p - 1], p, p, 0, 0
                ),
                1.0,
            )
            for p in item.pages
        ]
        results.append((item, verifier.verify(item.answer, hits, item.question)))
        if i % 50 == 0:
            progress(f"  {i}/{len(claims)} claims, {timer.elapsed():.0f} s")
    embedder.save()
    report, figures = render(results)
    machine = describe_machine(args.threads).describe()
    command = command_line("benchmarks.finance_claims", argv)
    text = f"{report}\nCommand: `{command}` ({timer.elapsed():.0f} s).\n\nMachine: {machine}\n"
    write_report(text, args.output)
    write_results(args.output, figures, command=command, machine=machine)
    return 0


def render(results: Sequence[tuple[FinanceClaim, list[Claim]]]) -> tuple[str, list[Figure]]:
    labels = [item.supported for item, _ in results]
    predicted = [answer_supported(claims) for _, claims in results]
    overall = scores(labels, predicted)
    perturbed_negatives = [
        p for (item, _), p in zip(results, predicted, strict=True) if item.kind in PERTURBATIONS
    ]
    false_support = sum(perturbed_negatives) / len(perturbed_negatives)
    kinds: dict[str, list[bool]] = defaultdict(list)
    for (item, _), p in zip(results, predicted, strict=True):
        kinds[item.kind].append(p)
    backed: dict[str, list[bool]] = defaultdict(list)  # the number check alone
    for item, claims in results:
        backing = number_backing(claims)
        if backing != "no figure":
            backed[item.kind].append(backing != "a figure unbacked")
    kind_rows = [
        [
            kind,
            "supported" if kind == "answer" else "not supported",
            len(v),
            f"{sum(v) / len(v):.3f}",
            f"{sum(backed[kind])}/{len(backed[kind])}",
        ]
        for kind, v in kinds.items()
    ]
    positive_rows = []
    for (item, claims), p in zip(results, predicted, strict=True):
        if item.kind != "answer":
            continue
        failed = [
            c for c in claims if c.support is not Support.SUPPORTED and not is_content_free(c.text)
        ]
        derived = [
            n.derivation.describe() for c in claims for n in c.numbers if n.derivation is not None
        ]
        unbacked = [n.text for c in claims for n in c.numbers if n.backing is Backing.UNBACKED]
        positive_rows.append(
            [
                item.doc_name,
                " ".join(item.answer.split())[:90],
                "supported" if p else "not: " + "; ".join(f"{c.support}" for c in failed)[:40],
                number_backing(claims) + (f" ({', '.join(unbacked)})" if unbacked else ""),
                "; ".join(derived)[:120],
            ]
        )
    figures = [
        Figure(
            "Verifier",
            "FinanceBench answers: precision of `supported`",
            overall.precision,
        ),
        Figure("Verifier", "FinanceBench answers: recall of `supported`", overall.recall),
        Figure(
            "Verifier",
            "FinanceBench number-changed answers: false support",
            false_support,
            higher_is_better=False,
        ),
    ]
    summary_row = [
        len(results),
        f"{overall.precision:.3f}",
        f"{overall.recall:.3f}",
        f"{overall.true_positives}/{overall.positives}",
        overall.false_positives,
        f"{sum(perturbed_negatives)}/{len(perturbed_negatives)} = {false_support:.3f}",
    ]
    text = f"""## Verifier on FinanceBench's human answers (financebench-dev, evaluation only)

Claims built by `benchmarks/finance_claims.py` from the 32 financebench-dev questions: each
human answer against its evidence page(s) (positive), the answer with one number changed
(digit, scale, year, sign, ratio turned around), another question's answer about the same
filing, and the answer against a page of the same filing at least {MIN_PAGE_DISTANCE} pages
from its evidence (negatives). The verifier is rag/verification.py as shipped (nothing
fitted on FinanceBench: CC-BY-NC, evaluation only); an answer counts as `supported` when
every sentence of it that states something is.

{markdown_table(SUMMARY_HEADERS, [summary_row])}

{markdown_table(KIND_HEADERS, kind_rows)}

Each positive, its label, how its figures are backed and the derivations found:

{markdown_table(["filing", "answer", "label", "figures", "derivations"], positive_rows)}
"""
    return text, figures


if __name__ == "__main__":
    raise SystemExit(main())
