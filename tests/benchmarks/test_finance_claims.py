"""The FinanceBench claim set's negatives: one number of an answer changed."""

from __future__ import annotations

import random

import pytest

from benchmarks.finance_claims import perturbed

ANSWER = "Gross profit improved from $3,017 million in FY2021 to $3,502 million in FY2022."


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (
            "scale",
            "Gross profit improved from $3,017 billion in FY2021 to $3,502 million in FY2022.",
        ),
        (
            "sign",
            "Gross profit improved from -$3,017 million in FY2021 to $3,502 million in FY2022.",
        ),
        ("ratio-inverted", None),  # an amount is no ratio
    ],
)
def test_each_kind_changes_the_first_figure(kind: str, expected: str | None) -> None:
    assert perturbed(ANSWER, kind, random.Random(0)) == expected


def test_a_year_moves_by_one() -> None:
    changed = perturbed(ANSWER, "year", random.Random(0))
    assert changed in {ANSWER.replace("FY2021", "FY2020"), ANSWER.replace("FY2021", "FY2022")}


def test_a_digit_change_leaves_every_other_character() -> None:
    changed = perturbed("The quick ratio was 0.69 times.", "digit", random.Random(0))
    assert changed is not None and changed != "The quick ratio was 0.69 times."
    assert len(changed) == len("The quick ratio was 0.69 times.")


def test_a_ratio_turned_around() -> None:
    assert perturbed("The ratio was 0.50.", "ratio-inverted", random.Random(0)) == (
        "The ratio was 2.00."
    )


def test_a_bare_amount_takes_a_scale_its_question_does_not_state() -> None:
    asked_in_billions = "What is the net PPNE for 3M? Answer in USD billions."
    assert perturbed("$8.70", "scale", random.Random(0), asked_in_billions) == "$8.70 million"
    assert perturbed("$382.00", "scale", random.Random(0), "In USD millions?") == "$382.00 billion"
