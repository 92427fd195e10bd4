"""A question -> the text to search with: answer-format instructions taken out.

Analysts' questions carry instructions for the answer ("Round your answer to two
decimal places.", "Answer in USD billions.", "Assume that you are an equities
analyst.") that match nothing in the documents yet dilute the question's embedding
and its BM25 terms. Retrieval searches with what is left; the LLM still gets the
whole question. Sentences that say where to look ("using the cash flow statement")
are kept only as the places they name.
"""

from __future__ import annotations

import re

_SENTENCE = re.compile(r"(?<=[.?!])\s+(?=[A-Z(\"'])")
# A sentence about the answer's form, the asker's persona or what to do if the
# question does not apply: nothing in it is in the documents.
_FORMAT_SENTENCE = re.compile(
    r"\bround(?:ed|ing)?\b.*\bdecimal"
    r"|\bdecimal places?\b"
    r"|^\s*(?:please\s+)?(?:answer|respond|reply|express|report|give (?:your|the) answer)\s+"
    r"(?:in|as|with|using)\b"
    r"|\bin units of\b"
    r"|^\s*(?:assume|imagine|pretend|suppose)\b.*\b(?:you|your)\b"
    r"|^\s*(?:you are|act as)\b"
    r"|\b(?:standpoint|perspective|shoes) of\b"
    r"|\bexplain why\b"
    r"|\b(?:state|say) (?:that|so)\b",
    re.IGNORECASE,
)
# Inline hints about the answer's form: "(in USD millions)", "(round to one decimal)".
_FORMAT_PARENTHESIS = re.compile(
    r"\s*\((?:[^()]*\b(?:round|decimal|units?|usd|millions?|billions?|thousands?|percents?)\b"
    r"[^()]*)\)",
    re.IGNORECASE,
)
# A sentence that tells the reader how to answer (where to look, how to work).
_INSTRUCTION = re.compile(
    r"^\s*(?:please\s+)?(?:answer|give|use|using|base|address|approach|calculate|compute|"
    r"rely|refer|consult|utili[sz]e|look|provide|respond|work)\b"
    r"|\bthe (?:following )?question\b",
    re.IGNORECASE,
)
# The places such a sentence names: "the cash flow statement", "the statement of
# income", "the balance sheet", "the P&L statement", "note 5".
_PLACE = re.compile(
    r"(?:[\w&'/-]+ ){0,3}?(?:statements?|sheets?|reports?|tables?|schedules?|sections?|notes?)"
    r"\b(?: of (?!the\b)[\w&'-]+(?: (?!and\b)[\w&'-]+){0,2})?",
    re.IGNORECASE,
)
# Words of the instruction around a place's name, not part of it.
_NOT_PLACE_WORDS = frozenset(
    [
        "the",
        "a",
        "an",
        "in",
        "from",
        "within",
        "on",
        "of",
        "by",
        "using",
        "use",
        "shown",
        "primarily",
        "information",
        "details",
        "that",
        "is",
        "provided",
        "clearly",
        "line",
        "items",
        "and",
        "answer",
        "question",
        "extract",
        "or",
        "calculate",
        "see",
        "your",
    ]
)
_TWO_DIGIT_YEAR = re.compile(r"\bFY\s?'?(\d{2})\b", re.IGNORECASE)
_QUARTER = re.compile(r"\b(Q[1-4])\s?'?\s?((?:19|20)\d\d)\b", re.IGNORECASE)
_SPACES = re.compile(r"\s+")


def search_query(question: str) -> str:
    """The part of ``question`` worth searching for; the question itself if nothing is left."""
    kept: list[str] = []
    for sentence in _sentences(question):
        sentence = _FORMAT_PARENTHESIS.sub("", sentence)
        if _FORMAT_SENTENCE.search(sentence):
            continue
        head, colon, tail = sentence.partition(":")
        if colon and _INSTRUCTION.search(head):
            kept += _places(head)
            sentence = tail
        if _INSTRUCTION.search(sentence) and not sentence.rstrip().endswith("?"):
            kept += _places(sentence)
            continue
        kept.append(sentence.strip())
    text = _SPACES.sub(" ", " ".join(part for part in kept if part)).strip()
    if not text:
        return question
    text = _TWO_DIGIT_YEAR.sub(lambda m: f"FY20{m.group(1)}", text)
    return _QUARTER.sub(lambda m: f"{m.group(1).upper()} {m.group(2)}", text)


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text.strip()) if s.strip()]


def _places(sentence: str) -> list[str]:
    places = []
    for match in _PLACE.finditer(sentence):
        words = match.group().split()
        while words and words[0].lower().strip("()") in _NOT_PLACE_WORDS:
            words.pop(0)
        place = " ".join(words)
        if place and place.lower() not in {"statement", "statements", "report", "section"}:
            places.append(place)
    return places
