"""Small-model guards: repetition, length cap (pure logic)."""

from __future__ import annotations

from rag.hygiene import (
    FACTUAL_ANSWER_TOKENS,
    answer_token_cap,
    budget_end,
    factual_sentence_budget,
    repetition_start,
)


def test_a_repeated_sentence_is_cut_where_it_repeats() -> None:
    text = "The big model was trained on 7 P100 GPUs. The big model was trained on 7 P100 GPUs."
    assert repetition_start(text) == text.index("The big", 1)


def test_a_looping_phrase_is_cut_at_its_second_run() -> None:
    text = "The answer is: LIMA The answer is: LIMA The answer is"
    assert text[: repetition_start(text)].strip() == "The answer is: LIMA"


def test_an_answer_without_repetition_is_kept() -> None:
    text = "The models were trained on 8 P100 GPUs [1]. Training took 3.5 days [1]."
    assert repetition_start(text) is None


def test_factual_questions_get_the_short_cap() -> None:
    assert answer_token_cap("How many GPUs were used?", 384) == FACTUAL_ANSWER_TOKENS
    assert answer_token_cap("Summarise the training procedure", 384) == 384
    assert answer_token_cap("Who wrote it?", 64) == 64


def test_the_budget_ends_after_the_second_finished_sentence_and_its_marker() -> None:
    text = "Training took 3.5 days. [1] It used 8 GPUs [1]. The base model took 12 hours."
    assert text[: budget_end(text, 2)] == "Training took 3.5 days. [1] It used 8 GPUs [1]."


def test_a_sentence_mark_with_nothing_after_it_yet_is_not_finished() -> None:
    assert budget_end("Training took 3.", 1) is None


def test_no_budget_for_other_questions_or_when_zero() -> None:
    assert factual_sentence_budget("How long did training take?", 2) == 2
    assert factual_sentence_budget("Summarise the training procedure", 2) == 0
    assert budget_end("One. Two. Three. ", 0) is None


def test_a_yes_before_the_answer_sentence_is_not_counted() -> None:
    text = "Yes. The documents are not stored [1]. They live in memory."
    assert text[: budget_end(text, 1)] == "Yes. The documents are not stored [1]."
