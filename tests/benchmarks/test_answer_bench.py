"""The answer benchmark: containment compares like with like."""

from __future__ import annotations

import asyncio

from benchmarks.answer_bench import CountingGenerator, contains_gold
from rag.fakes import ScriptedGenerator
from rag.generation import Message


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
