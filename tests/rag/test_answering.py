"""The answer service (rag/answering.py): rewrite -> retrieve -> answer, with history.

Quote mode (extract) needs no LLM, so the real embedder, parser and FAISS run without one;
the generator is scripted and only the follow-up rewrite path is under test here.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from core.settings import AnswerMode, Settings
from rag.answering import AnswerService, AskOptions, last_answer
from rag.fakes import ScriptedGenerator
from rag.sessions import Session
from serving.wiring import Services, build_services
from tests.support import FOLLOW_UP_QUESTION, GPU_ANSWER_PAGES, GPU_QUESTION


@pytest.fixture(scope="module")
def services(settings: Settings, embedder: Any) -> Services:
    quoting = settings.model_copy(
        update={"answer_mode": AnswerMode.EXTRACT, "followup_rewrite": "keywords"}
    )
    return build_services(quoting, embedder=embedder, generator=ScriptedGenerator())


@pytest.fixture()
def session(services: Services, attention_pdf: bytes) -> Session:
    session = services.store.create()
    services.ingestor.ingest(session, attention_pdf, "attention.pdf")
    return session


async def ask(answers: AnswerService, session: Session, question: str, **options: Any) -> str:
    asked = await answers.ask(session, question, AskOptions(**options))
    await last_answer(asked.events)
    return asked.standalone


def test_a_follow_up_is_searched_with_the_conversation_and_both_turns_are_kept(
    services: Services, session: Session
) -> None:
    asyncio.run(ask(services.answers, session, GPU_QUESTION))
    standalone = asyncio.run(ask(services.answers, session, FOLLOW_UP_QUESTION))
    assert standalone == f"{FOLLOW_UP_QUESTION} (P100 GPUs, train, big model)"
    turns = session.conversation.turns()
    assert [(t.question, t.standalone_question) for t in turns] == [
        (GPU_QUESTION, GPU_QUESTION),
        (FOLLOW_UP_QUESTION, standalone),
    ]
    assert {page.page for page in turns[0].citations} & GPU_ANSWER_PAGES


def test_given_history_is_used_as_is_and_nothing_is_recorded(
    services: Services, session: Session
) -> None:
    standalone = asyncio.run(ask(services.answers, session, FOLLOW_UP_QUESTION, history=()))
    assert standalone == FOLLOW_UP_QUESTION
    assert session.conversation.turns() == []
