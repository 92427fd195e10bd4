"""Does each sentence of an answer say what the passages it cites say?

A sentence is scored against each passage it cites by the best of its sentences
(windows), combining embedding similarity with lexical coverage of the sentence's
content words. Its numbers are checked by value against the cited passages
(rag/numbers.py): each must stand there up to formatting and scale or follow by one
step of arithmetic, else the sentence is unsupported. The best window is also the exact
highlight shown to the reader.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from bm25s.stopwords import STOPWORDS_EN

from core.api_models import Support as Support
from rag.citations import CITATION_PATTERN, cited_numbers
from rag.embedding import Embedder
from rag.lemmas import FRAME_WORDS, FUNCTION_WORDS, STATEMENT_SYNONYMS, lemma
from rag.number_checks import Backing, NumberCheck, backed_words, check_numbers
from rag.numbers import PassageNumbers, coded_numbers
from rag.prompts import NOT_FOUND_ANSWER
from rag.retrieval import Hit

SUPPORTED_AT = 0.55
WEAK_AT = 0.45
SEMANTIC_WEIGHT = 0.5
# Chosen on the calibration half of the COVID-QA claim set (benchmarks/verifier_bench.py,
# docs/benchmarks/verifier.md): a supported claim adds no word its passage lacks (this
# stops swapped names and numbers) and addresses the question.
MAX_UNBACKED_WORDS = 0
MIN_CONTENT_WORDS = 3
# Addressing the question. An absolute bar (cosine with the question + share of its words
# >= 1.3) kept out the true sentences of the passage that answer something else, but also
# most answers: a sentence that answers a question rarely repeats it. What marks the answer
# is that it is the passage's sentence nearest the question, so topicality is mostly
# relative: how far the claim's passage sentence leads the passage's other sentences in
# cosine with the question and in share of its words (each word weighted by its idf over
# the passage's sentences, so words every sentence has count little), plus the claim's
# own cosine and weighted word share. The weights are a logistic regression fitted on the
# calibration half and MIN_TOPICALITY its cut at precision >= 0.95 there
# (`verifier_bench --calibrate` prints them). Lead and weights cost no embedding: the
# passage's sentences are embedded to score the claim anyway.
TOPICALITY_BIAS = 0.315
LEAD_COSINE_WEIGHT = 2.976
LEAD_WORDS_WEIGHT = 4.346
RELEVANCE_WEIGHT = 1.109
QUESTION_WORDS_WEIGHT = 0.601
MIN_TOPICALITY = 1.335
# The claim set's passages all hold the answer, so the lead never met a passage that is
# all off the question (where its nearest sentence still leads): a floor on the absolute
# bar, at about the 2nd percentile of the calibration answers, keeps those out.
MIN_RELEVANCE = 0.2

_MARKERS_AFTER_STOP = re.compile(r"([.!?])((?:\s*\[[\d,\s\-–]+\])+)")
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[^\s])|\n+")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n\s*\n")
_LINE = re.compile(r"[^\n]*\n")
_BULLET = re.compile(r"^(?:-(?![$€£]?\d)\s*)+")  # "- item"; "-24.26" is a negative number
HEADING_CHARS = 40  # a line this short that does not end a sentence is a heading
_WORD = re.compile(r"[A-Za-z][A-Za-z\-']+|\d+(?:[.,]\d+)*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_STOPWORDS = frozenset(STOPWORDS_EN)
_PROMPT_LABEL = re.compile(r"(?i)^\W*(question|passages?)\s*:")


@dataclass(frozen=True, slots=True)
class Highlight:
    n: int  # the passage
    start: int  # span within the passage text
    end: int


@dataclass(frozen=True, slots=True)
class Claim:
    text: str  # the sentence as written, citation markers included
    citations: list[int]
    support: Support
    score: float
    highlight: Highlight | None  # best supporting span among the cited passages
    attributed: bool = False  # the model cited nothing; the citation was found by the verifier
    numbers: tuple[NumberCheck, ...] = ()  # where each number stands or how it follows


def split_claims(answer: str) -> list[tuple[str, list[int]]]:
    """Sentences of the answer with the passage numbers each one cites."""
    # "... GPUs. [1]" cites for the sentence before it: move markers inside the stop.
    normalized = _MARKERS_AFTER_STOP.sub(r"\2\1", answer)
    claims = []
    for sentence in _SENTENCE_BREAK.split(normalized):
        sentence = _BULLET.sub("", sentence.strip(" *•\t")).rstrip(" -")
        if sentence and _WORD.search(CITATION_PATTERN.sub("", sentence)):
            claims.append((sentence, cited_numbers(sentence)))
    return claims


def content_words(text: str) -> set[str]:
    words = (w.lower() for w in _WORD.findall(text))
    return {_stem(w) for w in words if w not in _STOPWORDS}


def _stem(word: str) -> str:
    """Crude suffix stripping, so that "trained" meets "train" and "models" meets "model"."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word[0].isdigit():
            return word[: -len(suffix)]
    return word


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of a passage, surrounding space trimmed.

    A sentence ends at . ! or ? before white space (so "3.5" stays whole), at a blank
    line, or after a short line without a stop (a heading); PDF line breaks inside a
    sentence do not end it.
    """
    spans = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        spans += _split_headings(text, start, match.start())
        start = match.end()
    spans += _split_headings(text, start, len(text))
    return [_trim(text, s, e) for s, e in spans if _WORD.search(text[s:e])]


def _split_headings(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans = []
    for line in _LINE.finditer(text, start, end):
        at_line_start = line.start() == 0 or text[line.start() - 1] == "\n"
        body = line.group().strip()
        heading = at_line_start and len(body) <= HEADING_CHARS and not body.endswith((",", ";"))
        if line.end() < end and heading:
            spans.append((start, line.end()))
            start = line.end()
    spans.append((start, end))
    return spans


def passage_windows(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of a passage, and of each pair of neighbours."""
    sentences = sentence_spans(text)
    pairs = [(a[0], b[1]) for a, b in itertools.pairwise(sentences)]
    return sentences + pairs or [(0, len(text))]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def lexical_support(claim: str, window: str) -> float:
    """Share of the claim's content words found in the window (numbers are checked by
    value, rag/numbers.py, so they count as found when the claim has words besides)."""
    words = {w for w in content_words(claim) if not w[0].isdigit()} - FRAME_WORDS
    if not words:
        return 1.0 if _NUMBER.search(claim) else 0.0
    return len(words & content_words(window)) / len(words)


def is_echo(claim: str, question: str) -> bool:
    """The claim repeats the question (or a prompt label) and adds nothing of its own."""
    plain = CITATION_PATTERN.sub("", claim).strip()
    if _PROMPT_LABEL.match(plain) or plain.endswith("?"):
        return True
    return bool(question) and not content_words(plain) - content_words(question)


def is_content_free(claim: str) -> bool:
    """Too few content words to state a fact ("The teacher's book."), unless it has a number."""
    plain = CITATION_PATTERN.sub("", claim)
    return len(content_words(plain)) < MIN_CONTENT_WORDS and not _NUMBER.search(plain)


@dataclass(frozen=True, slots=True)
class Evidence:
    """How one claim stands against the best window of the passages it is checked against."""

    semantic: float  # cosine of claim and window
    lexical: float  # share of the claim's content words in the window (0: a number differs)
    relevance: float  # cosine of claim and question (1.0 when there is no question)
    echo: bool
    content_free: bool
    highlight: Highlight | None
    question_coverage: float = 1.0  # share of the question's content words in the claim
    unbacked_words: int = 0  # claim content words in neither its passage nor the question
    # The remaining fields are 1.0 when there is no question. Passage sentence: the
    # sentence of the best window's passage that best scores the claim.
    question_words: float = 1.0  # idf-weighted share of the question's words in the claim
    lead_cosine: float = 1.0  # its passage sentence's cosine with the question minus the
    # best among the passage's other sentences (0 for a one-sentence passage)
    lead_words: float = 1.0  # the same for the idf-weighted share of the question's words
    numbers: tuple[NumberCheck, ...] = ()  # the claim's numbers against its passages
    figure_only: bool = False  # a bare figure ("$1,577.00") answering the question

    @property
    def unbacked_numbers(self) -> int:
        return sum(check.backing is Backing.UNBACKED for check in self.numbers)

    @property
    def figures_carry(self) -> bool:
        """Its figures are what it says: each is backed, one follows by arithmetic or
        stands in a statement's row the question names (NumberCheck.on_topic)."""
        figures = [n for n in self.numbers if not n.year]
        return bool(figures) and not self.unbacked_numbers and any(n.on_topic for n in figures)

    @property
    def score(self) -> float:
        return SEMANTIC_WEIGHT * self.semantic + (1 - SEMANTIC_WEIGHT) * self.lexical

    @property
    def topicality(self) -> float:
        """How squarely the claim addresses the question, as a logit (see MIN_TOPICALITY)."""
        return (
            TOPICALITY_BIAS
            + LEAD_COSINE_WEIGHT * self.lead_cosine
            + LEAD_WORDS_WEIGHT * self.lead_words
            + RELEVANCE_WEIGHT * self.relevance
            + QUESTION_WORDS_WEIGHT * self.question_words
        )

    @property
    def on_question(self) -> bool:
        return (
            self.topicality >= MIN_TOPICALITY
            and self.relevance + self.question_coverage >= MIN_RELEVANCE
        )


def decide(evidence: Evidence) -> Support:
    """Supported: backed word for word by its passage, on the question, a real statement.
    A number that neither stands in the passages nor follows from them is the strongest
    reason against a sentence."""
    if evidence.echo or evidence.content_free or evidence.unbacked_numbers:
        return Support.UNSUPPORTED
    if evidence.figure_only and any(n.on_topic or n.named_row for n in evidence.numbers):
        return Support.SUPPORTED
    if evidence.figures_carry and evidence.unbacked_words <= MAX_UNBACKED_WORDS:
        # An analyst's sentence over a table: its figures checked, every word backed.
        return Support.SUPPORTED
    backed = evidence.score >= SUPPORTED_AT and evidence.unbacked_words <= MAX_UNBACKED_WORDS
    if backed and evidence.on_question:
        return Support.SUPPORTED
    return label(evidence.score) if evidence.score < SUPPORTED_AT else Support.WEAK


def is_figure(claim: str, numbers: Sequence[NumberCheck]) -> bool:
    """The claim is a figure and nothing more ("$1,577.00", "24.26", "FY2019: 1.9%")."""
    words = {w for w in content_words(claim) if not w[0].isdigit()} - FRAME_WORDS
    return not words and any(not check.year for check in numbers)


def unbacked_words(
    claim: str, passage: str, question: str, numbers: Sequence[NumberCheck] = ()
) -> int:
    """Content words of the claim found neither in the passage nor in the question, not
    even as another form of the same word ("grew" for "grow", "analyses" for "analysis").
    A plain number is checked by value; one inside a name ("P100") must be written there.
    The words of an operation a number follows by ("grew" for a percent change) are
    backed by that derivation (rag.number_checks.backed_words)."""
    said = {w.lower() for w in _WORD.findall(f"{passage}\n{question}")}
    said |= backed_words(claim, numbers)
    stems, lemmas = {_stem(w) for w in said}, {lemma(w) for w in said}
    words = {w.lower() for w in _WORD.findall(claim) if not w[0].isdigit()}
    unbacked = {
        w
        for w in words - _STOPWORDS - FRAME_WORDS - FUNCTION_WORDS
        if _stem(w) not in stems
        and lemma(w) not in lemmas
        and STATEMENT_SYNONYMS.get(lemma(w)) not in lemmas
    }
    return len(unbacked) + len(coded_numbers(claim) - set(_NUMBER.findall(passage)))


def question_coverage(claim: str, question: str) -> float:
    asked = content_words(question)
    return len(asked & content_words(claim)) / len(asked) if asked else 1.0


def question_word_weights(question: str, sentences: Sequence[str]) -> dict[str, float]:
    """Each content word of the question with its idf over the sentences of a passage."""
    found = [content_words(s) for s in sentences]
    return {
        word: math.log((len(found) + 1) / (sum(word in f for f in found) + 0.5))
        for word in content_words(question)
    }


def weighted_coverage(text: str, weights: dict[str, float]) -> float:
    """Share of the question's word weight (question_word_weights) that the text holds."""
    total = sum(weights.values())
    if not total:
        return 0.0
    words = content_words(text)
    return sum(weight for word, weight in weights.items() if word in words) / total


def lead(values: np.ndarray, i: int) -> float:
    """How far values[i] exceeds the largest of the others (0 when there are none)."""
    others = np.delete(values, i)
    return float(values[i] - others.max()) if len(others) else 0.0


class CitationVerifier:
    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder

    def verify(self, answer: str, sources: Sequence[Hit], question: str = "") -> list[Claim]:
        """Label each sentence supported, weak or unsupported by the passages it cites.

        A sentence that cites nothing is checked against every passage: if one supports
        it, that passage becomes its (attributed) citation; otherwise
        it is at most weak. With a question, it must also be relevant to it to be supported."""
        if answer.strip() == NOT_FOUND_ANSWER:
            return []
        claims = split_claims(answer)
        if not claims:
            return []
        plain = [CITATION_PATTERN.sub("", text).strip() for text, _ in claims]
        candidates = []
        for _, cited in claims:
            valid = [n for n in cited if 1 <= n <= len(sources)]
            candidates.append(valid or list(range(1, len(sources) + 1)))
        evidence = self.evidence(plain, candidates, [h.chunk.text for h in sources], question)
        result = []
        for (text, cited), found in zip(claims, evidence, strict=True):
            uncited = not any(1 <= n <= len(sources) for n in cited)
            best = found.highlight
            support = decide(found)
            score = round(found.score, 3)
            numbers = found.numbers
            if uncited and support is Support.SUPPORTED and best is not None:
                result.append(Claim(text, [best.n], support, score, best, True, numbers))
                continue
            if uncited and support is Support.SUPPORTED:
                support = Support.WEAK
            result.append(Claim(text, cited, support, score, best, numbers=numbers))
        return result

    def evidence(
        self,
        claims: Sequence[str],
        candidates: Sequence[Sequence[int]],
        passages: Sequence[str],
        question: str,
    ) -> list[Evidence]:
        """For each claim, the evidence of its best window among its candidate passages
        (numbered from 1)."""
        windows = [passage_windows(text) for text in passages]
        window_texts = [
            text[s:e] for text, spans in zip(passages, windows, strict=True) for s, e in spans
        ]
        asked = [question] if question else []
        vectors = self._embedder.embed(list(claims) + asked + window_texts)
        claim_vectors = vectors[: len(claims)]
        question_vector = vectors[len(claims)] if question else None
        window_vectors = vectors[len(claims) + len(asked) :]
        offsets = np.cumsum([0] + [len(w) for w in windows])
        # Sentences come first among a passage's windows: k sentences make 2k - 1 windows.
        sentence_count = [(len(w) + 1) // 2 for w in windows]
        # Per passage, once: question word weights, and per sentence the cosine with the
        # question and the weighted share of its words.
        asked_of: dict[int, tuple[dict[str, float], np.ndarray, np.ndarray]] = {}
        cells = [PassageNumbers(n, text) for n, text in enumerate(passages, start=1)]
        answer = "\n".join(claims)  # its other sentences' figures are operands too
        result = []
        for claim, checked, claim_vector in zip(claims, candidates, claim_vectors, strict=True):
            best = Evidence(0.0, 0.0, 0.0, False, False, None)
            scored: dict[int, list[float]] = {}  # passage -> score of each of its windows
            for n in checked:
                first = offsets[n - 1]
                scored[n] = []
                for j, (start, end) in enumerate(windows[n - 1]):
                    semantic = float(window_vectors[first + j] @ claim_vector)
                    lexical = lexical_support(claim, passages[n - 1][start:end])
                    window = Evidence(
                        semantic, lexical, 0.0, False, False, Highlight(n, start, end)
                    )
                    scored[n].append(window.score)
                    if window.score > best.score:
                        best = window
            relevance = 1.0 if question_vector is None else float(question_vector @ claim_vector)
            backing = passages[best.highlight.n - 1] if best.highlight else ""
            question_words = lead_cosine = lead_words = 1.0
            if question_vector is not None and best.highlight is not None:
                n = best.highlight.n
                count = sentence_count[n - 1]
                if n not in asked_of:
                    texts = [passages[n - 1][s:e] for s, e in windows[n - 1][:count]]
                    weights = question_word_weights(question, texts)
                    first = offsets[n - 1]
                    asked_of[n] = (
                        weights,
                        window_vectors[first : first + count] @ question_vector,
                        np.array([weighted_coverage(t, weights) for t in texts]),
                    )
                weights, cosines, shares = asked_of[n]
                sentence = int(np.argmax(scored[n][:count]))
                question_words = weighted_coverage(claim, weights)
                lead_cosine = lead(cosines, sentence)
                lead_words = lead(shares, sentence)
            numbers = tuple(check_numbers(claim, [cells[n - 1] for n in checked], question, answer))
            cells_on = sorted({n for check in numbers for n in check.passages})
            backing = "\n".join([backing, *(passages[n - 1] for n in cells_on)])
            result.append(
                Evidence(
                    semantic=best.semantic,
                    lexical=best.lexical,
                    relevance=relevance,
                    echo=is_echo(claim, question),
                    content_free=is_content_free(claim),
                    highlight=best.highlight,
                    question_coverage=question_coverage(claim, question),
                    unbacked_words=unbacked_words(claim, backing, question, numbers),
                    question_words=question_words,
                    lead_cosine=lead_cosine,
                    lead_words=lead_words,
                    numbers=numbers,
                    figure_only=bool(question) and is_figure(claim, numbers),
                )
            )
        return result


def with_attributed_markers(answer: str, claims: Sequence[Claim]) -> str:
    """The answer with a [n] marker added to each sentence whose citation was attributed."""
    for claim in claims:
        if claim.attributed:
            body = claim.text.rstrip(".!?")
            marked = f"{body} {''.join(f'[{n}]' for n in claim.citations)}{claim.text[len(body) :]}"
            answer = answer.replace(claim.text, marked, 1)
    return answer


def label(score: float) -> Support:
    if score >= SUPPORTED_AT:
        return Support.SUPPORTED
    if score >= WEAK_AT:
        return Support.WEAK
    return Support.UNSUPPORTED
