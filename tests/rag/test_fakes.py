"""rag.fakes: the hashing embedder keeps the Embedder contract; the scripted generator plays
its script."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from core.errors import GeneratorUnavailableError
from rag.fakes import HashingEmbedder, ScriptedGenerator
from rag.generation import GeneratorStatus, Message


def test_hashing_vectors_are_unit_length_float32_and_the_same_in_every_process(
    fake_embedder: HashingEmbedder,
) -> None:
    vectors = fake_embedder.embed(["Eight P100 GPUs.", "", "..."])
    assert vectors.shape == (3, fake_embedder.dimension) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    # blake2b, not hash(): a vector saved by one run is the same in the next.
    assert np.array_equal(HashingEmbedder().embed(["Eight P100 GPUs."])[0], vectors[0])


def test_texts_sharing_words_are_nearer_than_texts_sharing_none(
    fake_embedder: HashingEmbedder,
) -> None:
    question, answer, other = fake_embedder.embed(
        ["How many P100 GPUs?", "We used 8 P100 GPUs.", "Lima is the capital of Peru."]
    )
    assert float(question @ answer) > 0.3 > abs(float(question @ other))


def test_token_counts_are_the_bundled_models_and_survive_pickling(
    fake_embedder: HashingEmbedder,
) -> None:
    counted = pickle.loads(pickle.dumps(fake_embedder.count_tokens))
    assert counted("Transformers") == fake_embedder.count_tokens("Transformers") == 1
    assert fake_embedder.max_tokens == 254
    assert fake_embedder.embed([]).shape == (0, fake_embedder.dimension)


async def replies(generator: ScriptedGenerator, prompt: str) -> str:
    messages: list[Message] = [{"role": "user", "content": prompt}]
    return "".join([p async for p in generator.stream(messages, max_tokens=9, temperature=0)])


async def test_a_list_of_replies_is_played_in_order_then_fails() -> None:
    generator = ScriptedGenerator(["First answer.", "Second answer."])
    assert await replies(generator, "a") == "First answer. "
    assert await replies(generator, "b") == "Second answer. "
    assert [p[-1]["content"] for p in generator.prompts] == ["a", "b"]
    with pytest.raises(AssertionError, match="all 2 replies are used"):
        await replies(generator, "c")


async def test_a_function_replies_to_the_prompt() -> None:
    generator = ScriptedGenerator(lambda messages: messages[-1]["content"].upper())
    assert await replies(generator, "loud") == "LOUD "


async def test_an_unavailable_generator_fails_like_an_unreachable_server() -> None:
    generator = ScriptedGenerator("Never said.", model="tiny")
    assert (await generator.info()).model == "tiny"
    generator.available = False
    assert await generator.status() == GeneratorStatus.UNAVAILABLE
    with pytest.raises(GeneratorUnavailableError):
        await replies(generator, "q")
