"""The question sets the answer benchmark asks, and how it judges that a reply holds the answer.

- ``covidqa``: COVID-QA, each question over its own article; a reply holds the answer when
  its text (citation markers removed) contains the gold answer text.
- ``financebench-dev``: FinanceBench's dev questions (evaluation only: CC-BY-NC), each over
  its own filing; the gold answers are analysts' sentences ("$1577.00" for a cell "1,577"),
  which a quote never contains as text, so a reply holds the answer when one of the
  passages it cites covers an evidence page of the question.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from benchmarks import data
from benchmarks.common import Article, load_covidqa, normalize
from rag.answer import Answer
from rag.citations import CITATION_PATTERN

SETS = ("covidqa", "financebench-dev")


@dataclass(frozen=True, slots=True)
class Document:
    filename: str
    read: Callable[[], bytes]  # the document's bytes, read when a question first needs it


@dataclass(frozen=True, slots=True)
class SetQuestion:
    text: str
    document: int  # index into the set's documents
    gold: tuple[str, ...]  # covidqa: normalized answer texts; financebench: "file.pdf:page"


@dataclass(frozen=True, slots=True)
class AnswerSet:
    name: str
    documents: list[Document]
    questions: list[SetQuestion]
    holds: Callable[[Answer, SetQuestion], bool]  # the reply holds the gold answer
    gold_rule: str  # what "contains gold" means, for the report
    holds_name: str = "contains the gold answer"  # the same, in a figure's name


def comparable(text: str) -> str:
    """Without [n] markers, lower case, single spaces, no space before punctuation."""
    text = normalize(CITATION_PATTERN.sub("", text))
    return re.sub(r"\s+([.,;:])", r"\1", text)


def contains_gold(answer: str, gold: Sequence[str]) -> bool:
    # Gold spans carry the article's own reference markers ("... SARS CoV [13] , it was")
    # and sometimes a cut one at the end ("per site ["): compared like the answer (before
    # 3 Dec they were not, which counted 7 of 300 correct quotes as wrong).
    shown = comparable(answer)
    return any(comparable(g).rstrip(" [,;") in shown for g in gold)


def cites_evidence(answer: Answer, pages: Sequence[str]) -> bool:
    """Some passage the reply cites covers one of ``pages`` ("file.pdf:page")."""
    cited = {
        f"{c.hit.chunk.filename}:{page}"
        for c in answer.citations
        for page in range(c.hit.chunk.page, c.hit.chunk.page_end + 1)
    }
    return not cited.isdisjoint(pages)


def article_documents(articles: Sequence[Article]) -> list[Document]:
    return [Document(a.filename, partial(str.encode, a.text, "utf-8")) for a in articles]


def covidqa() -> AnswerSet:
    articles, questions = load_covidqa()
    return AnswerSet(
        "COVID-QA",
        article_documents(articles),
        [SetQuestion(q.text, q.article, q.answers) for q in questions],
        lambda answer, question: contains_gold(answer.text, question.gold),
        "the reply's text (citation markers removed) contains the gold answer text",
    )


def financebench_entries() -> list[dict[str, Any]]:
    """financebench-dev's questions as its questions.jsonl gives them."""
    text = data.path("financebench-dev/questions.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def filing(doc_name: str) -> Document:
    """One financebench-dev filing, by its ``doc_name``."""
    path = f"financebench-dev/pdfs/{doc_name}.pdf"
    return Document(f"{doc_name}.pdf", lambda: data.path(path).read_bytes())


def evidence_pages(entry: dict[str, Any]) -> tuple[str, ...]:
    """A question's evidence pages as "file.pdf:page" (pages from 1)."""
    pages = {f"{e['doc_name']}.pdf:{int(e['evidence_page_num']) + 1}" for e in entry["evidence"]}
    return tuple(sorted(pages))


def financebench_dev() -> AnswerSet:
    entries = financebench_entries()
    names = sorted({str(e["doc_name"]) for e in entries})
    questions = [
        SetQuestion(str(e["question"]), names.index(str(e["doc_name"])), evidence_pages(e))
        for e in entries
    ]
    return AnswerSet(
        "financebench-dev",
        [filing(name) for name in names],
        questions,
        lambda answer, question: cites_evidence(answer, question.gold),
        "a passage the reply cites covers an evidence page of the question (the gold answers "
        "are analysts' sentences, which no quote contains as text)",
        "cites an evidence page",
    )


def load_set(name: str) -> AnswerSet:
    return covidqa() if name == "covidqa" else financebench_dev()
