"""The small model's factual answer ends after its sentence budget; other answers do not."""

from __future__ import annotations

import asyncio

import pytest

from rag.answer import AnswerEngine, AnswerRequest, Draft
from rag.fakes import HashingEmbedder, ScriptedGenerator
from rag.followup import SMALL_MODELS
from rag.retrieval import Retriever

SMALL_MODEL = next(iter(SMALL_MODELS))
REPLY = "Training took 3.5 days [1]. It used 8 GPUs [1]. The base model took 12 hours. More."


def written(model: str, question: str, sentences: int) -> tuple[str, int]:
    """The draft's text and how many words were streamed before the stream ended."""
    generator = ScriptedGenerator(REPLY, model=model)
    engine = AnswerEngine(Retriever(HashingEmbedder(), dedup_threshold=0.95), generator)
    request = AnswerRequest(
        question, [], max_tokens=96, temperature=0.0, small_model_sentences=sentences
    )
    draft = Draft()

    async def run() -> int:
        return len([token async for token in engine.write(request, draft, hygiene=True)])

    streamed = asyncio.run(run())
    return draft.text, streamed


def test_the_small_models_factual_answer_stops_after_two_sentences() -> None:
    text, streamed = written(SMALL_MODEL, "How long did training take?", 2)
    assert (text, streamed) == ("Training took 3.5 days [1]. It used 8 GPUs [1].", 10)


@pytest.mark.parametrize(
    ("model", "question", "sentences"),
    [
        ("Qwen2.5-7B-Instruct", "How long did training take?", 2),  # a capable model
        (SMALL_MODEL, "Summarise the training.", 2),  # not a factual question
        (SMALL_MODEL, "How long did training take?", 0),  # the budget switched off
    ],
)
def test_no_budget_keeps_the_whole_answer(model: str, question: str, sentences: int) -> None:
    assert written(model, question, sentences)[0] == REPLY
