"""End-to-end answers on COVID-QA with the embedded vLLM CPU server: generate, extract, auto.

300 questions drawn with a fixed seed; each is asked over its own article (one session
per article, ingested through the real loader, chunker and embedder), the passages are
retrieved once and the same passages are answered in every mode (and, beside `auto`,
by the earlier model-first `auto`, on the same model text). Per mode:

- containment: share of shown answers whose text (citation markers removed) contains
  the gold answer text (case- and whitespace-insensitive);
- false-support rate: among answers shown as supported (not the not-found reply), the
  share that do not contain the gold answer;
- latency: median time from passages to the finished, verified answer;
- model tokens: streamed pieces per answer, and the share that echoed "Question:".

On a shared CPU 300 questions x 3 modes may not fit a time budget: ``--budget-min``
stops asking new questions after that many minutes and the report states n. ``--modes
extract`` asks without the model (no vLLM started), and ``--cache`` ingests the articles
with the benchmarks' embedding cache (answer-time embeddings are always computed).

    .venv/bin/python -m benchmarks.answer_bench --output docs/benchmarks/answers.md
    .venv/bin/python -m benchmarks.answer_bench --limit 20 --budget-min 30
    .venv/bin/python -m benchmarks.answer_bench --modes extract --cache
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import (
    Article,
    Question,
    Stopwatch,
    command_line,
    describe_machine,
    load_covidqa,
    markdown_table,
    median,
    normalize,
    progress,
    write_report,
)
from benchmarks.embedding_cache import CachingEmbedder
from benchmarks.variants import model_first
from core.settings import AnswerMode, Settings, load_settings
from rag.answer import AnswerKind, AnswerRequest, DoneEvent
from rag.answer_modes import STRATEGIES, Strategy
from rag.citations import CITATION_PATTERN
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


def choose_questions(questions: Sequence[Question], count: int) -> list[Question]:
    return random.Random(SEED).sample(list(questions), min(count, len(questions)))


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


class ArticleSessions:
    """One session per article, ingested the first time a question needs it."""

    def __init__(
        self, store: SessionStore, ingestor: Ingestor, articles: Sequence[Article]
    ) -> None:
        self._store = store
        self._ingestor = ingestor
        self._articles = articles
        self._sessions: dict[int, Session] = {}

    def session(self, article: int) -> Session:
        if article not in self._sessions:
            session = self._store.create()
            document = self._articles[article]
            self._ingestor.ingest(session, document.text.encode("utf-8"), document.filename)
            self._sessions[article] = session
        return self._sessions[article]


async def ask_all(
    settings: Settings,
    url: str | None,
    embedder: Embedder,
    articles: Sequence[Article],
    chosen: Sequence[Question],
    budget_s: float,
    modes: Sequence[AnswerMode] = MODES,
    ingest_embedder: Embedder | None = None,
) -> list[Row]:
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
        if mode is AnswerMode.AUTO:  # right after auto, so any model text is replayed
            runs.append((MODEL_FIRST, mode, model_first))
    ingestor = Ingestor(settings, ingest_embedder) if ingest_embedder else services.ingestor
    sessions = ArticleSessions(services.store, ingestor, articles)
    rows: list[Row] = []
    clock = Stopwatch()
    try:
        for number, question in enumerate(chosen, 1):
            if clock.elapsed() > budget_s:
                progress(f"time budget reached after {number - 1} questions")
                break
            session = sessions.session(question.article)
            hits = await services.answers.search(session, question.text, TOP_K)
            for label, mode, strategy in runs:
                generator.reset()
                done: DoneEvent | None = None
                request = AnswerRequest(
                    question.text,
                    hits,
                    max_tokens=settings.answer_max_tokens,
                    temperature=0.0,
                    mode=mode,
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
                        contains_gold=contains_gold(answer.text, question.answers),
                        latency_ms=answer.timings.total_ms,
                        model_pieces=generator.pieces,
                        echoed="question:" in generator.text.lower(),
                        removed=answer.removed,
                    )
                )
            if number % 5 == 0:
                progress(f"  {number}/{len(chosen)} questions, {clock.elapsed():.0f} s")
    finally:
        await generator.aclose()
    return rows


SHOWN_KINDS = (AnswerKind.GENERATED, AnswerKind.QUOTED)


def _false_support_of(shown: Sequence[Row], kind: AnswerKind) -> str:
    members = [r for r in shown if r.kind is kind]
    if not members:
        return "n/a"
    return f"{sum(not r.contains_gold for r in members) / len(members):.2f} (n={len(members)})"


def summarize(rows: Sequence[Row]) -> list[list[object]]:
    by_label: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_label[row.label].append(row)
    table = []
    for label, members in by_label.items():
        shown = [r for r in members if r.kind in SHOWN_KINDS]
        false_support = sum(1 for r in shown if not r.contains_gold)
        generated = [r for r in members if r.model_pieces]
        table.append(
            [
                f"`{label}`",
                len(members),
                f"{sum(r.contains_gold for r in members) / len(members):.3f}",
                f"{len(shown) / len(members):.3f}",
                f"{false_support / len(shown):.3f}" if shown else "n/a",
                " / ".join(_false_support_of(shown, kind) for kind in SHOWN_KINDS),
                f"{sum(r.kind is AnswerKind.QUOTED for r in members) / len(members):.3f}",
                f"{median([r.latency_ms for r in members]) / 1000:.2f}",
                f"{median([float(r.model_pieces) for r in generated]):.0f}" if generated else "0",
                f"{sum(r.echoed for r in generated) / len(generated):.3f}" if generated else "n/a",
                sum(r.removed for r in members),
            ]
        )
    return table


def gold_length_percentiles(chosen: Sequence[Question], embedder: Embedder) -> str:
    lengths = sorted(embedder.count_tokens(q.answers[0]) for q in chosen)
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
) -> str:
    headers = [
        "mode",
        "n",
        "contains gold",
        "shown as an answer",
        "false-support rate",
        "false support: written / quoted",
        "quoted",
        "median latency s",
        "median model tokens",
        "echoed 'Question:'",
        "sentences removed",
    ]
    base = ["benchmarks.answer_bench", "--output", "docs/benchmarks/answers.md"]
    return f"""## Answers end to end on COVID-QA: {", ".join(modes)}

Command: `{command_line("benchmarks.answer_bench", argv)}` ({seconds / 60:.0f} min).
**n = {asked} of {QUESTIONS} questions** (seed {SEED}) were asked in each mode shown (all
{QUESTIONS} unless a time budget ran out on the shared CPU); all {QUESTIONS} in every mode:
`{command_line(base[0], base[1:])}`.

Each question is asked over its own article (one session per article, real loader,
chunker, embedder and hybrid retrieval, top {TOP_K}); the same passages are answered in
each mode by the embedded vLLM CPU server (SmolLM2-135M-Instruct, temperature 0).
*contains gold*: the shown answer contains the gold answer text. *false-support rate*:
among answers shown as supported (written or quoted, not the not-found or unanswered
reply), the share that do not contain the gold answer. `generate` is today's behaviour
(no stop sequences, no cap, the whole answer shown when one sentence is supported);
`auto` adds the stop sequences, repetition guard and the {128}-token cap for factual
questions; it shows quotes when quote mode is confident of some, else the model's
supported sentences; `{MODEL_FIRST}` (`auto` before 4 Dec) asks the model first and
quotes only when none of its sentences is supported, on the very same model text
(replayed); `extract` never calls the model. Quoted answers are shown only at a
confidence of at least {min_confidence} (`PGPT_QUOTE_MIN_CONFIDENCE`), as configured.
Gold answer lengths of these questions, in model-tokenizer-like embedding tokens:
{gold_lengths}.

{markdown_table(headers, summarize(rows))}

Containment is strict (the whole gold text, often a full sentence in COVID-QA), so a
correct paraphrase counts as not containing it: the false-support rate is an upper bound.

How the share of quotes shown and their false support move with the minimum confidence,
over all 1,380 COVID-QA questions in two halves: docs/benchmarks/quote-confidence.md.

Machine: {machine}
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, help="write the markdown report here")
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
    args = parser.parse_args(argv)
    try:
        modes = [AnswerMode(name) for name in args.modes.split(",")]
    except ValueError as exc:
        parser.error(str(exc))
    argv = list(argv) if argv is not None else sys.argv[1:]
    configure_threads(args.threads)
    machine = describe_machine(args.threads)
    settings = load_settings(threads=args.threads)
    embedder = make_embedder(settings)
    articles, questions = load_covidqa()
    chosen = choose_questions(questions, QUESTIONS)[args.skip : args.skip + args.limit]
    timer = Stopwatch()

    ingest_embedder = (
        CachingEmbedder.ours(embedder, resolve_batch_size(settings)) if args.cache else None
    )

    async def run(url: str | None) -> list[Row]:
        return await ask_all(
            settings,
            url,
            embedder,
            articles,
            chosen,
            args.budget_min * 60,
            modes,
            ingest_embedder,
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
    asked = sum(row.label == rows[0].label for row in rows) if rows else 0
    text = report(
        rows,
        asked,
        argv,
        machine.describe(),
        timer.elapsed(),
        gold_length_percentiles(chosen, embedder),
        modes,
        settings.quote_min_confidence,
    )
    write_report(text, args.output)
    return 0


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


if __name__ == "__main__":
    raise SystemExit(main())
