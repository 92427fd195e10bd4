"""Two-turn COVID-QA conversations: a question, then a follow-up that says "it" for the topic.

For two questions about the same article that share a topic (a whole run of content
words of the second question that the first also contains and that few questions of the
dataset use, e.g. "bovine coronavirus"), the second is rewritten with a pronoun in its place:

    What is the size of bovine coronavirus?
    How many nucleotides does bovine coronavirus contain?  ->  How many nucleotides does it contain?

Deterministic: articles in file order, at most one pair per article on the first pass,
then a second pair per article until there are enough.

    .venv/bin/python -m benchmarks.followup_pairs --count 50     # print the pairs as JSON
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from benchmarks.common import Question, load_covidqa
from rag.followup import STOPWORDS, words

MIN_TOPIC_CHARS = 4
PAIRS_PER_ARTICLE = 2
# A topic's rarest word is in at most this share of all questions: "hepcidin", not "effect";
# a single lower-case word (not a name like "MERS-CoV" or a phrase) must be rarer still.
MAX_TOPIC_QUESTION_SHARE = 0.02
MAX_PLAIN_WORD_QUESTION_SHARE = 0.005
# Rare in the questions yet no topic (read off the pairs this script made without it).
NOT_TOPICS_TEXT = """
    what's conducted discussed marked needed family entities authors reduction prevention
    reported regulate publication proportion labeled available life
"""
NOT_TOPICS = frozenset(NOT_TOPICS_TEXT.split())


@dataclass(frozen=True, slots=True)
class FollowUpPair:
    article: int
    first: str  # the first question, asked as is
    first_answer: str  # its answer text, shown to the LLM rewriter as the first turn's answer
    original: str  # the second question as the dataset has it (names the topic)
    follow_up: str  # the second question with the topic replaced by a pronoun
    topic: str
    answers: tuple[str, ...]  # of the second question, normalized


def content_runs(question: str) -> list[tuple[str, ...]]:
    """Runs of consecutive content words, as written."""
    runs: list[tuple[str, ...]] = []
    run: list[str] = []
    for word in [*words(question), ""]:
        if word and word.lower() not in STOPWORDS:
            run.append(word)
        elif run:
            runs.append(tuple(run))
            run = []
    return runs


def looks_like_a_topic(run: Sequence[str], question_share: dict[str, float]) -> bool:
    if any(w.lower() in NOT_TOPICS for w in run) or all(w.isdigit() for w in run):
        return False
    rarest = min(question_share.get(w.lower(), 0.0) for w in run)
    is_name = len(run) > 1 or any(c.isupper() or c.isdigit() for c in run[0])
    limit = MAX_TOPIC_QUESTION_SHARE if is_name else MAX_PLAIN_WORD_QUESTION_SHARE
    return len(" ".join(run)) >= MIN_TOPIC_CHARS and rarest <= limit


def shared_topic(
    first: str, second: str, question_share: dict[str, float]
) -> tuple[str, ...] | None:
    """The longest whole run of content words of ``second`` that ``first`` also contains
    and whose rarest word few questions use (a name, not a common word)."""
    first_text = " ".join(w.lower() for w in words(first))
    best: tuple[str, ...] | None = None
    for run in content_runs(second):
        if best is not None and len(run) <= len(best):
            continue
        if not looks_like_a_topic(run, question_share):
            continue
        lowered = " ".join(run).lower()
        if re.search(rf"(?<!\S){re.escape(lowered)}(?!\S)", first_text):
            best = tuple(w.lower() for w in run)
    return best


def question_shares(questions: Sequence[Question]) -> dict[str, float]:
    """For each lower-cased word: the share of questions that use it."""
    counts: dict[str, int] = {}
    for question in questions:
        for word in {w.lower() for w in words(question.text)}:
            counts[word] = counts.get(word, 0) + 1
    return {word: count / len(questions) for word, count in counts.items()}


def with_pronoun(question: str, topic: Sequence[str]) -> str | None:
    """``question`` with every mention of ``topic`` (and its article) made "it"/"its"."""
    body = r"[\s\-]+".join(re.escape(word) for word in topic)
    pattern = re.compile(
        rf"(?:\b(?:the|a|an)\s+)?(?<![\w-]){body}(?![\w-])(?P<possessive>['’]s\b)?", re.IGNORECASE
    )
    if not pattern.search(question):
        return None
    replaced = pattern.sub(lambda m: "its" if m.group("possessive") else "it", question)
    return re.sub(r"\s+", " ", replaced).strip()


def build_pairs(questions: Sequence[Question], count: int) -> list[FollowUpPair]:
    shares = question_shares(questions)
    by_article: dict[int, list[Question]] = {}
    for question in questions:
        by_article.setdefault(question.article, []).append(question)
    pairs: list[FollowUpPair] = []
    used: set[tuple[int, str]] = set()
    for _ in range(PAIRS_PER_ARTICLE):
        for article, asked in sorted(by_article.items()):
            pair = first_pair(article, asked, used, shares)
            if pair is None:
                continue
            pairs.append(pair)
            used.update({(article, pair.first), (article, pair.original)})
            if len(pairs) == count:
                return pairs
    return pairs


def first_pair(
    article: int,
    asked: Sequence[Question],
    used: set[tuple[int, str]],
    shares: dict[str, float],
) -> FollowUpPair | None:
    for position, second in enumerate(asked):
        if (article, second.text) in used:
            continue
        for first in asked[:position]:
            if (article, first.text) in used:
                continue
            topic = shared_topic(first.text, second.text, shares)
            follow_up = with_pronoun(second.text, topic) if topic else None
            if topic is None or follow_up is None or follow_up == second.text:
                continue
            return FollowUpPair(
                article=article,
                first=first.text,
                first_answer=first.answers[0],
                original=second.text,
                follow_up=follow_up,
                topic=" ".join(topic),
                answers=second.answers,
            )
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=50)
    args = parser.parse_args(argv)
    _, questions = load_covidqa()
    pairs = build_pairs(questions, args.count)
    print(json.dumps([asdict(pair) for pair in pairs], indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
