"""Quote confidence: what the logistic model reads from the best sentence."""

from __future__ import annotations

from ingest.models import Chunk
from rag.extract import Quote, QuoteExtractor, confidence_features, quote_confidence
from rag.fakes import HashingEmbedder
from rag.retrieval import Hit

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


DECK = (
    "PrivateGPT++ answers questions about your files. "
    "The uploaded documents are not stored on the server. "
    "Answers cite the pages they come from."
)


def deck_hits() -> list[Hit]:
    return [Hit(Chunk("d", "deck.pdf", DECK, 3, 3, 0, len(DECK)), 0.7)]


def test_a_yes_no_question_can_be_answered_by_a_sentence_negating_its_claim() -> None:
    question = "Are documents uploaded to PrivateGPT++ stored on the server?"
    extractor = QuoteExtractor(HashingEmbedder())
    best = extractor.closest(question, deck_hits())[0]
    assert best.text == "The uploaded documents are not stored on the server."


def test_a_sentence_repeating_an_open_question_is_still_no_candidate() -> None:
    question = "Why are uploaded documents not stored on the server?"
    texts = [q.text for q in QuoteExtractor(HashingEmbedder()).scored(question, deck_hits())]
    assert "The uploaded documents are not stored on the server." not in texts
