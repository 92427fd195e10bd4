"""A capable model's answers over real filings: FinanceBench's human answers as the model's text.

The scripted generator writes each question's analyst answer (financebench-dev: evaluation
only, measured here, nothing fitted on it) as the model's reply; three filings of the dev
set are ingested whole into one session (real PDF parser, embedder, FAISS and hybrid
retrieval), and the question is asked through the answer service with `auto` in the
model-first order (PGPT_AUTO_ORDER, as for a capable model) and with `generate`.
The answers kept are those the verifier labels supported against their evidence pages
(docs/benchmarks/verifier-financebench.md): `auto` shows the analyst's sentence itself,
not a quote, with how each figure is backed (the cell it stands in, or the arithmetic it
follows by), and `generate` labels the same sentences the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from benchmarks.answer_sets import comparable, filing, financebench_entries
from core.settings import AnswerMode, Settings
from rag.answer import Answer, AnswerKind
from rag.answering import AskOptions, last_answer
from rag.fakes import ScriptedGenerator
from rag.generation import Message
from rag.number_checks import NumberCheck
from rag.sessions import Session
from rag.verification import Claim
from serving.wiring import Services, build_services

pytestmark = pytest.mark.slow  # ingests three 10-Ks (about 480 pages)

FILINGS = ("3M_2018_10K", "BLOCK_2020_10K", "CORNING_2022_10K")
CAPEX = "financebench_id_03029"  # 3M's FY2018 capital expenditure: "$1577.00"
GROWTH = "financebench_id_03838"  # Block's FY2019-FY2020 revenue growth: "101.5%"
TAX_RATE = "financebench_id_01346"  # Corning's effective tax rate FY2021 -> FY2022


def by_id() -> dict[str, dict[str, Any]]:
    return {str(e["financebench_id"]): e for e in financebench_entries()}


def analyst(messages: Sequence[Message]) -> str:
    """The human answer of the question the prompt asks (its last message ends with it)."""
    asked = messages[-1]["content"]
    (answer,) = [
        str(e["answer"]) for e in by_id().values() if f"Question: {e['question']}" in asked
    ]
    return answer


@pytest.fixture(scope="module")
def services(settings: Settings, embedder: Any) -> Services:
    capable = settings.model_copy(
        update={
            "auto_order": "model-first",
            "parse_timeout_s": 900.0,  # 160 pages of tables on the shared test machine
        }
    )
    return build_services(capable, embedder=embedder, generator=ScriptedGenerator(analyst))


@pytest.fixture(scope="module")
def filings(services: Services) -> Session:
    session = services.store.create()
    for name in FILINGS:
        document = filing(name)
        services.ingestor.ingest(session, document.read(), document.filename)
    return session


def ask(services: Services, session: Session, question_id: str, mode: AnswerMode) -> Answer:
    async def asked() -> Answer:
        found = await services.answers.ask(
            session, str(by_id()[question_id]["question"]), AskOptions(mode=mode, history=())
        )
        return await last_answer(found.events)

    return asyncio.run(asked())


def backing(check: NumberCheck) -> str:
    """How a figure is backed, as the UI states it: the cell, or the derivation."""
    if check.derivation is not None:
        return f"{check.text}: {check.derivation.describe()}"
    if check.source is not None:
        return (
            f"{check.text}: {check.backing} as {check.source.text.strip()} ({check.source.label})"
        )
    return f"{check.text}: {check.backing}"


def labelled(claims: Sequence[Claim]) -> list[tuple[str, str, list[str]]]:
    return [(c.text, str(c.support), [backing(n) for n in c.numbers if not n.year]) for c in claims]


# How each figure of the analyst's answer is backed in the passages retrieved for it.
EXPECTED = {
    CAPEX: ["$1577.00: stands as (1,577) (Purchases of property, plant and equipment (PP&E))"],
    GROWTH: [
        "101.5%: (9,497,578 (Total net revenue) - 4,713,500 (Total net revenue)) / "
        "4,713,500 (Total net revenue) = 1.015"
    ],
    # FY2021's 20% is the reconciliation table's GAAP rate, 20.2%, within the claim's rounding.
    TAX_RATE: [
        "20%: stands as 20.2% (As reported - GAAP)",
        "23%: stands as 23% (Effective tax rate)",
    ],
}


@pytest.mark.parametrize("question_id", [CAPEX, GROWTH, TAX_RATE])
def test_auto_shows_the_analysts_answer_first_with_how_its_figures_are_backed(
    services: Services, filings: Session, question_id: str
) -> None:
    answer = ask(services, filings, question_id, AnswerMode.AUTO)
    written = str(by_id()[question_id]["answer"])
    figures = [b for _, _, numbers in labelled(answer.claims) for b in numbers]
    assert (answer.kind, comparable(answer.text), answer.removed, figures) == (
        AnswerKind.GENERATED,
        comparable(written),
        0,
        EXPECTED[question_id],
    )


@pytest.mark.parametrize("question_id", [CAPEX, GROWTH, TAX_RATE])
def test_generate_labels_the_analysts_sentences_as_auto_does(
    services: Services, filings: Session, question_id: str
) -> None:
    auto = ask(services, filings, question_id, AnswerMode.AUTO)
    generated = ask(services, filings, question_id, AnswerMode.GENERATE)
    assert (generated.kind, labelled(generated.claims)) == (
        AnswerKind.GENERATED,
        labelled(auto.claims),
    )
