"""The verifier's labelled claim set: positives are the annotated, whole answer sentence."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.claimset import build_claims

FIRST = "Early models placed the NLRP3 inflammasome in the cytosol of resting cells."
SECOND = "The 3a protein activates the NLRP3 inflammasome in primed macrophages."
DECIMAL = "Disease modelers have estimated the basic reproduction number R0 to be 2.2 in Wuhan."
FILLER = "Further experiments measured cytokine secretion across several cell lines."


def _dataset(tmp_path: Path, context: str, question: str, answer: str, start: int) -> Path:
    other = "Influenza vaccines reduce hospital admissions among elderly patients each winter."
    data = {
        "data": [
            {
                "paragraphs": [
                    {
                        "context": context,
                        "qas": [
                            {
                                "question": question,
                                "answers": [{"text": answer, "answer_start": start}],
                            }
                        ],
                    }
                ]
            },
            {"paragraphs": [{"context": other, "qas": []}]},
        ]
    }
    path = tmp_path / "covidqa.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _answer_sentences(path: Path) -> list[str]:
    return [c.claim for c in build_claims(path) if c.kind == "answer-sentence"]


def test_the_positive_is_the_sentence_the_annotator_marked_not_the_first_occurrence(
    tmp_path: Path,
) -> None:
    context = f"{FIRST} {SECOND} {FILLER}"
    start = context.index("NLRP3", len(FIRST))
    path = _dataset(tmp_path, context, "What does the 3a protein activate?", "NLRP3", start)
    assert _answer_sentences(path) == [SECOND]


def test_a_decimal_number_does_not_end_the_positive_sentence(tmp_path: Path) -> None:
    context = f"{FILLER} {DECIMAL} {FIRST}"
    path = _dataset(tmp_path, context, "What is R0 estimated to be?", "2.2", context.index("2.2"))
    assert _answer_sentences(path) == [DECIMAL]
