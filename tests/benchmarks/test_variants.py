"""The benchmarks' own variants of shipped parts (benchmarks/variants.py, followup_bench)."""

from __future__ import annotations

from benchmarks.followup_bench import CountingLlmRewriter
from benchmarks.variants import variant_retriever
from core.settings import load_settings
from rag.conversation import Turn
from rag.fakes import HashingEmbedder, ScriptedGenerator
from rag.followup import carry_over
from rag.lexical import DEFAULT_ANALYZER

GPU_QUESTION = "How many P100 GPUs were used to train the big model?"
FOLLOW_UP = "How long did its training take?"
HISTORY = [Turn(GPU_QUESTION, GPU_QUESTION, "The big model was trained on 8 P100 GPUs [1].")]


async def test_the_counting_rewriter_counts_an_answer_given_instead_of_a_question() -> None:
    replies = ["The training took 3.5 days.", "How long did the big model's training take?"]
    rewriter = CountingLlmRewriter(ScriptedGenerator(replies))
    assert await rewriter.rewrite(FOLLOW_UP, HISTORY) == carry_over(FOLLOW_UP, HISTORY)
    assert await rewriter.rewrite(FOLLOW_UP, HISTORY) == replies[1]
    assert rewriter.fallbacks == 1


def test_a_variant_retriever_takes_the_named_bm25_tokenizer() -> None:
    settings, embedder = load_settings(), HashingEmbedder()
    assert variant_retriever(settings, embedder, None).lexical_analyzer == DEFAULT_ANALYZER
    assert variant_retriever(settings, embedder, "words").lexical_analyzer == "words"
