"""The small model's factual answer ends after its sentence budget; other answers do not."""

from __future__ import annotations

import asyncio

import pytest

from rag.answer import AnswerEngine, AnswerRequest, Draft
from rag.fakes import HashingEmbedder, ScriptedGenerator
from rag.followup import SMALL_MODELS
from rag.hygiene import SMALL_MODEL_FACTUAL_SENTENCES
from rag.retrieval import Retriever

SMALL_MODEL = next(iter(SMALL_MODELS))
REPLY = "Yes. Training took 3.5 days [1]. It used 8 GPUs [1]. The base model took 12 hours."


def written(model: str, question: str) -> tuple[str, int]:
    """The draft's text and how many words were streamed before the stream ended."""
    generator = ScriptedGenerator(REPLY, model=model)
    engine = AnswerEngine(Retriever(HashingEmbedder(), dedup_threshold=0.95), generator)
    request = AnswerRequest(question, [], max_tokens=96, temperature=0.0)
    draft = Draft()

    async def run() -> int:
        return len([token async for token in engine.write(request, draft, hygiene=True)])

    streamed = asyncio.run(run())
    return draft.text, streamed


def test_the_small_models_factual_answer_stops_after_its_first_sentence() -> None:
    assert SMALL_MODEL_FACTUAL_SENTENCES == 1
    text, streamed = written(SMALL_MODEL, "How long did training take?")
    assert (text, streamed) == ("Yes. Training took 3.5 days [1].", 6)


@pytest.mark.parametrize(
    ("model", "question"),
    [
        ("Qwen2.5-7B-Instruct", "How long did training take?"),  # a capable model
        (SMALL_MODEL, "Summarise the training."),  # not a factual question
    ],
)
def test_no_budget_keeps_the_whole_answer(model: str, question: str) -> None:
    assert written(model, question)[0] == REPLY
