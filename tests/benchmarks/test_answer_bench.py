"""The answer benchmark: containment compares like with like."""

from __future__ import annotations

from benchmarks.answer_bench import contains_gold


def test_a_quote_holding_the_gold_span_with_its_reference_markers_contains_it() -> None:
    quote = (
        "Combined with evidence that the bat ACE2 gene has been positively selected [13] , "
        "it was proposed that an intermediate host may not be necessary. [2]"
    )
    gold = "combined with evidence that the bat ace2 gene has been positively selected ["
    assert contains_gold(quote, [gold])


def test_a_quote_without_the_gold_answer_does_not_contain_it() -> None:
    assert not contains_gold("Four cases were still hospitalised. [1]", ["35 of 37"])
