"""End-to-end answers with the embedded vLLM CPU server: generate, extract, auto.

Up to 300 questions of a set (benchmarks/answer_sets.py: COVID-QA, or financebench-dev
with ``--set``) drawn with a fixed seed; each is asked over its own document (one session
per document, ingested through the real loader, chunker and embedder), the passages are
retrieved once and the same passages are answered in every mode (and, beside `auto`,
by the earlier model-first `auto`, on the same model text). Per mode:

- containment: share of replies holding the gold answer (COVID-QA: the text, citation
  markers removed, contains the gold answer text; financebench-dev: a cited passage
  covers an evidence page), whether shown as the answer or as unverified evidence, and
  the share shown as the answer that holds it;
- false-support rate: among replies shown as the answer (written or quoted; not the
  not-found reply, nor the reply that leads with unverified evidence), the share that
  do not hold the gold answer;
- unverified evidence: the share of replies that lead with the passages' closest
  sentences because nothing passed the checks (AnswerKind.EVIDENCE);
- latency: median time from passages to the finished, verified answer;
- model tokens: streamed pieces per answer, and the share that echoed "Question:".

On a shared CPU 300 questions x 3 modes may not fit a time budget: ``--budget-min``
stops asking new questions after that many minutes and the report states n. ``--modes
extract`` asks without the model (no vLLM started), and ``--cache`` ingests the documents
with the benchmarks' embedding cache (answer-time embeddings are always computed).
With ``--output`` the run also writes its results file (benchmarks/results.py).

    .venv/bin/python -m benchmarks.answer_bench --output docs/benchmarks/answers.md
    .venv/bin/python -m benchmarks.answer_bench --limit 20 --budget-min 30
    .venv/bin/python -m benchmarks.answer_bench --modes extract --cache
    .venv/bin/python -m benchmarks.answer_bench --set financebench-dev --modes auto --cache
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.answer_sets import SETS, AnswerSet, Document, SetQuestion, load_set
from benchmarks.common import (
    Stopwatch,
    command_line,
    describe_machine,
    markdown_table,
    median,
    progress,
    write_report,
)
from benchmarks.embedding_cache import CachingEmbedder
from benchmarks.results import Figure, write_results
from benchmarks.variants import model_first
from core.settings import AnswerMode, Settings, load_settings
from rag.answer import AnswerKind, DoneEvent
from rag.answer_modes import STRATEGIES, Strategy
from rag.answering import AskOptions, answer_request
from rag.embedding import Embedder, configure_threads, make_embedder, resolve_batch_size
from rag.generation import Generator, GeneratorInfo, GeneratorStatus, Message
from rag.pipeline import Ingestor
from rag.sessions import Session, SessionStore
from serving.launcher import EmbeddedVLLM, prepare_model
from serving.vllm_client import VLLMGenerator, make_generator
from serving.wiring import build_services

SEED = 20260412
QUESTIONS = 300
TOP_K = 5
MODES = (AnswerMode.GENERATE, AnswerMode.EXTRACT, AnswerMode.AUTO)


MODEL_FIRST = "auto, model first"  # the earlier auto: quotes only when nothing written holds


@dataclass(frozen=True, slots=True)
class Row:
    label: str  # the mode, or MODEL_FIRST
    kind: AnswerKind
    contains_gold: bool
    latency_ms: float
    model_pieces: int  # streamed pieces (about tokens) the model wrote; 0 without the model
    echoed: bool  # the model wrote "Question:" (a prompt echo)
    removed: int
    question: int = 0  # the question's number in the draw (from 0)


class CountingGenerator:
    """Passes through to a real generator and records what the model wrote last.

    The same request twice in a row is answered from the record, so two engines compared
    on one question judge the very same model text.
    """

    def __init__(self, inner: Generator) -> None:
        self.inner = inner
        self.pieces = 0
        self.text = ""
        self._last: tuple[str, list[str]] = ("", [])

    async def status(self) -> GeneratorStatus:
        return await self.inner.status()

    async def info(self) -> GeneratorInfo:
        return await self.inner.info()

    async def count_tokens(self, messages: Sequence[Message]) -> int:
        return await self.inner.count_tokens(messages)

    async def stream(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        temperature: float,
        stop: Sequence[str] = (),
    ) -> AsyncIterator[str]:
        request = repr((list(messages), max_tokens, temperature, list(stop)))
        recorded = self._last[1] if self._last[0] == request else None
        pieces: list[str] = []
        self._last = (request, pieces)
        source = (
            _replay(recorded)
            if recorded is not None
            else self.inner.stream(
                messages, max_tokens=max_tokens, temperature=temperature, stop=stop
            )
        )
        async for piece in source:
            pieces.append(piece)
            self.pieces += 1
            self.text += piece
            yield piece

    async def aclose(self) -> None:
        await self.inner.aclose()

    def reset(self) -> None:
        self.pieces, self.text = 0, ""


async def _replay(pieces: Sequence[str]) -> AsyncIterator[str]:
    for piece in pieces:
        yield piece


def choose_questions(questions: Sequence[SetQuestion], count: int) -> list[SetQuestion]:
    return random.Random(SEED).sample(list(questions), min(count, len(questions)))


class DocumentSessions:
    """One session per document, ingested the first time a question needs it."""

    def __init__(
        self, store: SessionStore, ingestor: Ingestor, documents: Sequence[Document]
    ) -> None:
        self._store = store
        self._ingestor = ingestor
        self._documents = documents
        self._sessions: dict[int, Session] = {}

    def session(self, number: int) -> Session:
        if number not in self._sessions:
            session = self._store.create()
            document = self._documents[number]
            self._ingestor.ingest(session, document.read(), document.filename)
            self._sessions[number] = session
        return self._sessions[number]


async def ask_all(
    settings: Settings,
    url: str | None,
    embedder: Embedder,
    asked: AnswerSet,
    chosen: Sequence[SetQuestion],
    budget_s: float,
    modes: Sequence[AnswerMode] = MODES,
    ingest_embedder: Embedder | None = None,
    beside_auto: bool = True,
) -> list[Row]:
    """Every chosen question in every mode; ``beside_auto``: the model-first order after
    `auto` too (it asks the model for every question)."""
    # No URL: extract only, which never calls the model; the configured client stands in.
    inner = (
        VLLMGenerator(url, timeout_s=settings.generator_timeout_s, retries=1)
        if url
        else make_generator(settings)
    )
    generator = CountingGenerator(inner)
    services = build_services(settings, embedder=embedder, generator=generator)
    engine = services.answers.engine
    runs: list[tuple[str, AnswerMode, Strategy]] = []
    for mode in modes:
        runs.append((mode.value, mode, STRATEGIES[mode]))
        if mode is AnswerMode.AUTO and beside_auto:  # right after auto: model text replayed
            runs.append((MODEL_FIRST, mode, model_first))
    ingestor = Ingestor(settings, ingest_embedder) if ingest_embedder else services.ingestor
    sessions = DocumentSessions(services.store, ingestor, asked.documents)
    rows: list[Row] = []
    clock = Stopwatch()
    try:
        for number, question in enumerate(chosen, 1):
            if clock.elapsed() > budget_s:
                progress(f"time budget reached after {number - 1} questions")
                break
            session = sessions.session(question.document)
            hits = await services.answers.search(session, question.text, TOP_K)
            for label, mode, strategy in runs:
                generator.reset()
                done: DoneEvent | None = None
                request = answer_request(
                    settings, question.text, hits, AskOptions(temperature=0.0, mode=mode)
                )
                async for event in strategy(engine, request):
                    if isinstance(event, DoneEvent):
                        done = event
                assert done is not None
                answer = done.answer
                rows.append(
                    Row(
                        label=label,
                        kind=answer.kind,
                        contains_gold=asked.holds(answer, question),
                        latency_ms=answer.timings.total_ms,
                        model_pieces=generator.pieces,
                        echoed="question:" in generator.text.lower(),
                        removed=answer.removed,
                        question=number - 1,
                    )
                )
            if number % 5 == 0:
                progress(f"  {number}/{len(chosen)} questions, {clock.elapsed():.0f} s")
    finally:
        await generator.aclose()
    return rows


# Shown as the answer; EVIDENCE leads with the passages' closest sentences, marked as
# unverified (not as the answer), so it is never counted as false support.
SHOWN_KINDS = (AnswerKind.GENERATED, AnswerKind.QUOTED)


@dataclass(frozen=True, slots=True)
class Summary:
    """One label's replies: the shares the table and the results file report."""

    label: str
    rows: Sequence[Row]

    @property
    def n(self) -> int:
        return len(self.rows)

    @property
    def shown(self) -> list[Row]:
        return [r for r in self.rows if r.kind in SHOWN_KINDS]

    @property
    def evidence(self) -> list[Row]:
        return [r for r in self.rows if r.kind is AnswerKind.EVIDENCE]

    @property
    def containment(self) -> float:
        """Replies holding the gold answer, as the answer or as evidence."""
        return sum(r.contains_gold for r in self.rows) / self.n

    @property
    def containment_as_answer(self) -> float:
        return sum(r.contains_gold for r in self.shown) / self.n

    @property
    def false_support(self) -> float | None:
        """Among replies shown as the answer, the share without the gold answer."""
        shown = self.shown
        return sum(not r.contains_gold for r in shown) / len(shown) if shown else None

    @property
    def evidence_share(self) -> float:
        return len(self.evidence) / self.n

    @property
    def median_latency_s(self) -> float:
        return median([r.latency_ms for r in self.rows]) / 1000


def summaries(rows: Sequence[Row]) -> list[Summary]:
    by_label: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_label[row.label].append(row)
    return [Summary(label, members) for label, members in by_label.items()]


def _false_support_of(shown: Sequence[Row], kind: AnswerKind) -> str:
    members = [r for r in shown if r.kind is kind]
    if not members:
        return "n/a"
    return f"{sum(not r.contains_gold for r in members) / len(members):.2f} (n={len(members)})"


def _share_holding(members: Sequence[Row]) -> str:
    if not members:
        return "n/a"
    return f"{sum(r.contains_gold for r in members) / len(members):.2f} (n={len(members)})"


def summarize(rows: Sequence[Row]) -> list[list[object]]:
    table = []
    for s in summaries(rows):
        members, shown = s.rows, s.shown
        generated = [r for r in members if r.model_pieces]
        table.append(
            [
                f"`{s.label}`",
                s.n,
                f"{s.containment:.3f}",
                f"{s.containment_as_answer:.3f}",
                f"{len(shown) / s.n:.3f}",
                f"{s.false_support:.3f}" if s.false_support is not None else "n/a",
                " / ".join(_false_support_of(shown, kind) for kind in SHOWN_KINDS),
                f"{s.evidence_share:.3f}",
                _share_holding(s.evidence),
                f"{sum(r.kind is AnswerKind.QUOTED for r in members) / s.n:.3f}",
                f"{s.median_latency_s:.2f}",
                f"{median([float(r.model_pieces) for r in generated]):.0f}" if generated else "0",
                f"{sum(r.echoed for r in generated) / len(generated):.3f}" if generated else "n/a",
                sum(r.removed for r in members),
            ]
        )
    return table


def figures(
    rows: Sequence[Row], set_name: str, holds_name: str = "contains the gold answer"
) -> list[Figure]:
    """Per mode: containment, false support of what is shown as the answer, the share of
    replies leading with unverified evidence, median latency; `auto` beside model-first."""
    found = summaries(rows)
    by_label = {s.label: s for s in found}
    result: list[Figure] = []
    for s in found:
        if s.label == MODEL_FIRST:
            continue
        base = by_label.get(MODEL_FIRST) if s.label == AnswerMode.AUTO.value else None
        name = f"{set_name} `{s.label}`"
        # metric, ours, model first's, higher is better, in README
        measured = [
            (
                f"{holds_name} ({s.n} questions)",
                s.containment,
                base.containment if base else None,
                True,
                True,
            ),
            (
                "false support of what is shown as the answer",
                s.false_support,
                base.false_support if base else None,
                False,
                True,
            ),
            (
                "replies leading with unverified evidence",
                s.evidence_share,
                base.evidence_share if base else None,
                False,
                False,
            ),
        ]
        for metric, value, of_base, higher, headline in measured:
            if value is None:
                continue
            result.append(
                Figure(
                    "Answers",
                    f"{name} {metric}",
                    value,
                    baseline="model first" if base else "",
                    baseline_value=of_base,
                    higher_is_better=higher,
                    headline=headline,
                )
            )
        result.append(
            Figure(
                "Answers",
                f"{name} median latency",
                s.median_latency_s,
                "s",
                baseline="model first" if base else "",
                baseline_value=base.median_latency_s if base else None,
                higher_is_better=False,
                digits=2,
            )
        )
    return result


def gold_length_percentiles(chosen: Sequence[SetQuestion], embedder: Embedder) -> str:
    lengths = sorted(embedder.count_tokens(q.gold[0]) for q in chosen)
    pick = [lengths[int(p * (len(lengths) - 1))] for p in (0.5, 0.9, 0.95)]
    return f"median {pick[0]}, 90th percentile {pick[1]}, 95th percentile {pick[2]}"


def report(
    rows: Sequence[Row],
    asked: int,
    argv: Sequence[str],
    machine: str,
    seconds: float,
    gold_lengths: str,
    modes: Sequence[AnswerMode] = MODES,
    min_confidence: float = 0.0,
    answer_set: str = "COVID-QA",
    gold_rule: str = "",
    drawn: int = QUESTIONS,
) -> str:
    headers = [
        "mode",
        "n",
        "contains gold",
        "contains gold as the answer",
        "shown as an answer",
        "false-support rate",
        "false support: written / quoted",
        "unverified evidence",
        "evidence holding gold",
        "quoted",
        "median latency s",
        "median model tokens",
        "echoed 'Question:'",
        "sentences removed",
    ]
    chosen_set = [] if answer_set == "COVID-QA" else ["--set", answer_set]
    base = ["benchmarks.answer_bench", *chosen_set, "--output", "docs/benchmarks/answers.md"]
    lengths = (
        f"Gold answer lengths of these questions, in model-tokenizer-like embedding tokens:\n"
        f"{gold_lengths}.\n"
        if gold_lengths
        else ""
    )
    return f"""## Answers end to end on {answer_set}: {", ".join(modes)}

Command: `{command_line("benchmarks.answer_bench", argv)}` ({seconds / 60:.0f} min).
**n = {asked} of {drawn} questions** (seed {SEED}) were asked in each mode shown (all
{drawn} unless a limit or a time budget ran out on the shared CPU); all {drawn} in every
mode: `{command_line(base[0], base[1:])}`.

Each question is asked over its own document (one session per document, real loader,
chunker, embedder and hybrid retrieval, top {TOP_K}); the same passages are answered in
each mode by the embedded vLLM CPU server (SmolLM2-135M-Instruct, temperature 0).
*contains gold*: {gold_rule}; counted over every reply, whether it shows the answer or
leads with unverified evidence (*contains gold as the answer*: only replies shown as the
answer). *false-support rate*: among replies shown as the answer (written or quoted; not
the not-found reply and not the unverified-evidence reply, which leads with the passages'
closest sentences marked as not checked as an answer), the share without the gold answer.
*unverified evidence*: the share of replies leading with it; *evidence holding gold*:
among those, the share holding the gold answer.
`generate` shows the model's whole answer when a sentence of it is supported; `auto` adds the stop
sequences, repetition guard and the 128-token cap for factual questions; it shows quotes
when quote mode is confident of some, else the model's supported sentences (the order of
`PGPT_AUTO_ORDER` for the served model); `{MODEL_FIRST}` (`auto` before 4 Dec) asks the
model first and quotes only when none of its sentences is supported, on the very same
model text (replayed); `extract` never calls the model. Quoted answers are shown only at a
confidence of at least {min_confidence} (`PGPT_QUOTE_MIN_CONFIDENCE`), as configured.
{lengths}
{markdown_table(headers, summarize(rows))}

Containment is strict, so a correct paraphrase counts as not containing the gold answer:
the false-support rate is an upper bound.

Machine: {machine}
"""


def write_rows(rows: Sequence[Row], chosen: Sequence[SetQuestion], path: Path) -> None:
    """Per reply: the question's number in the draw, its document, the label and what the
    reply was (no document or answer text)."""
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            record = asdict(row) | {"document": chosen[row.question].document}
            out.write(json.dumps(record, default=str) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, help="write the markdown report here")
    parser.add_argument("--set", default="covidqa", choices=SETS, help="the question set")
    parser.add_argument("--limit", type=int, default=QUESTIONS, help="questions to ask")
    parser.add_argument(
        "--skip", type=int, default=0, help="start after this many of the drawn questions"
    )
    parser.add_argument("--budget-min", type=float, default=1e9, help="stop asking after this")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (embedding)")
    parser.add_argument("--vllm-url", help="use a running vLLM server instead of starting one")
    parser.add_argument(
        "--modes", default=",".join(MODES), help="comma-separated, of generate, extract, auto"
    )
    parser.add_argument("--cache", action="store_true", help="ingest with the embedding cache")
    parser.add_argument(
        "--without-model-first",
        action="store_true",
        help="skip the model-first order beside auto (it asks the model for every question)",
    )
    parser.add_argument(
        "--rows", type=Path, help="write each reply's kind and judgement here (JSON lines)"
    )
    args = parser.parse_args(argv)
    try:
        modes = [AnswerMode(name) for name in args.modes.split(",")]
    except ValueError as exc:
        parser.error(str(exc))
    argv = list(argv) if argv is not None else sys.argv[1:]
    configure_threads(args.threads)
    machine = describe_machine(args.threads)
    settings = load_settings(threads=args.threads)
    if args.set != "covidqa":  # a long filing can outlast the 30 s default parse on 2 cores
        settings = settings.model_copy(update={"parse_timeout_s": 900.0})
    embedder = make_embedder(settings)
    asked_set = load_set(args.set)
    drawn = choose_questions(asked_set.questions, QUESTIONS)
    chosen = drawn[args.skip : args.skip + args.limit]
    timer = Stopwatch()

    ingest_embedder = (
        CachingEmbedder.ours(embedder, resolve_batch_size(settings)) if args.cache else None
    )

    async def run(url: str | None) -> list[Row]:
        return await ask_all(
            settings,
            url,
            embedder,
            asked_set,
            chosen,
            args.budget_min * 60,
            modes,
            ingest_embedder,
            beside_auto=not args.without_model_first,
        )

    if args.vllm_url or modes == [AnswerMode.EXTRACT]:  # quote mode never calls the model
        rows = asyncio.run(run(args.vllm_url))
    else:
        with open(os.devnull, "w") as quiet:
            server = EmbeddedVLLM(
                settings, port=_free_port(), model_path=prepare_model(settings), output=quiet
            )
            progress("starting the embedded vLLM server")
            server.start()
            try:
                rows = asyncio.run(run(server.url))
            finally:
                server.stop()
    if ingest_embedder is not None:
        ingest_embedder.save()
    if args.rows is not None:
        write_rows(rows, chosen, args.rows)
    asked = sum(row.label == rows[0].label for row in rows) if rows else 0
    covid = args.set == "covidqa"
    text = report(
        rows,
        asked,
        argv,
        machine.describe(),
        timer.elapsed(),
        gold_length_percentiles(chosen, embedder) if covid else "",
        modes,
        settings.quote_min_confidence,
        asked_set.name,
        asked_set.gold_rule,
        len(drawn),
    )
    write_report(text, args.output)
    command = command_line("benchmarks.answer_bench", argv)
    write_results(
        args.output,
        figures(rows, asked_set.name, asked_set.holds_name),
        command=command,
        machine=machine.describe(),
    )
    return 0


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


if __name__ == "__main__":
    raise SystemExit(main())
