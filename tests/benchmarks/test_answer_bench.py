"""The answer benchmark: containment compares like with like; unverified evidence is not
counted as an answer shown; the results file holds what the report says."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from benchmarks.answer_bench import MODEL_FIRST, CountingGenerator, Row, figures, summaries
from benchmarks.answer_sets import cites_evidence, contains_gold
from benchmarks.results import read_runs, write_results
from ingest.models import Chunk
from rag.answer import AnswerKind
from rag.citations import Citation
from rag.fakes import ScriptedGenerator
from rag.generation import Message
from rag.retrieval import Hit


def test_a_quote_holding_the_gold_span_with_its_reference_markers_contains_it() -> None:
    quote = (
        "Combined with evidence that the bat ACE2 gene has been positively selected [13] , "
        "it was proposed that an intermediate host may not be necessary. [2]"
    )
    gold = "combined with evidence that the bat ace2 gene has been positively selected ["
    assert contains_gold(quote, [gold])


def test_a_quote_without_the_gold_answer_does_not_contain_it() -> None:
    assert not contains_gold("Four cases were still hospitalised. [1]", ["35 of 37"])


async def _written(generator: CountingGenerator, messages: list[Message]) -> str:
    return "".join([p async for p in generator.stream(messages, max_tokens=8, temperature=0)])


def test_the_same_request_twice_is_answered_once_and_replayed() -> None:
    model = ScriptedGenerator("Eight GPUs [1].")
    generator = CountingGenerator(model)
    asked: list[Message] = [{"role": "user", "content": "How many GPUs?"}]
    first = asyncio.run(_written(generator, asked))
    model.answer = "Something else entirely."  # a second call to the model would say this
    assert asyncio.run(_written(generator, asked)) == first


def row(label: str, kind: AnswerKind, holds: bool) -> Row:
    return Row(label, kind, holds, latency_ms=100.0, model_pieces=0, echoed=False, removed=0)


# One question each: a right and a wrong quote, evidence with and without the gold answer,
# and the not-found reply.
AUTO_ROWS = [
    row("auto", AnswerKind.QUOTED, True),
    row("auto", AnswerKind.QUOTED, False),
    row("auto", AnswerKind.EVIDENCE, True),
    row("auto", AnswerKind.EVIDENCE, False),
    row("auto", AnswerKind.NOT_FOUND, False),
]


def test_evidence_counts_in_containment_but_never_as_false_support() -> None:
    (auto,) = summaries(AUTO_ROWS)
    assert (
        auto.containment,
        auto.containment_as_answer,
        auto.false_support,
        auto.evidence_share,
    ) == (0.4, 0.2, 0.5, 0.4)


def test_the_results_file_holds_auto_beside_model_first(tmp_path: Path) -> None:
    model_first = [row(MODEL_FIRST, AnswerKind.GENERATED, False)] * 4 + [
        row(MODEL_FIRST, AnswerKind.EVIDENCE, True)
    ]
    write_results(
        tmp_path / "answers-auto.md",
        figures(AUTO_ROWS + model_first, "COVID-QA"),
        command="cmd",
        machine="m",
    )
    (run,) = read_runs(tmp_path / "results")
    assert [(f.metric, f.value, f.baseline_value) for f in run.figures] == [
        ("COVID-QA `auto` contains the gold answer (5 questions)", 0.4, 0.2),
        ("COVID-QA `auto` false support of what is shown as the answer", 0.5, 1.0),
        ("COVID-QA `auto` replies leading with unverified evidence", 0.4, 0.2),
        ("COVID-QA `auto` median latency", 0.1, 0.1),
    ]


def cited(filename: str, page: int, page_end: int) -> Any:
    chunk = Chunk("d", filename, "text", page, page_end, 0, 4)
    return SimpleNamespace(citations=[Citation(1, Hit(chunk, 0.9))])


def test_a_financebench_reply_holds_the_answer_when_a_cited_passage_covers_an_evidence_page() -> (
    None
):
    evidence = ("3M_2018_10K.pdf:60",)
    assert (
        cites_evidence(cited("3M_2018_10K.pdf", 59, 60), evidence),
        cites_evidence(cited("3M_2018_10K.pdf", 61, 61), evidence),
        cites_evidence(cited("BLOCK_2020_10K.pdf", 60, 60), evidence),
    ) == (True, False, False)
