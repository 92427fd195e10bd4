"""Quote confidence: what the logistic model reads from the best sentence."""

from __future__ import annotations

from rag.extract import Quote, confidence_features, quote_confidence

QUESTION = "How many GPUs were used to train the model?"
ANSWER = Quote(1, 0, 60, "We trained the model on one machine with 8 NVIDIA P100 GPUs.", 0.80)


def rival(score: float) -> Quote:
    return Quote(2, 0, 40, "The model was trained on the WMT 2014 data.", score)


def test_the_margin_is_measured_to_the_next_distinct_sentence() -> None:
    repeated = Quote(3, 10, 70, ANSWER.text, 0.80)  # overlapping chunks repeat a sentence
    features = confidence_features(QUESTION, [ANSWER, repeated, rival(0.70)])
    assert round(features["margin"], 6) == 0.1


def test_a_close_rival_lowers_the_confidence() -> None:
    assert quote_confidence(QUESTION, [ANSWER, rival(0.78)]) < quote_confidence(
        QUESTION, [ANSWER, rival(0.60)]
    )
