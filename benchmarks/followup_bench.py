"""Follow-up retrieval on COVID-QA: hit@5 of a pronoun follow-up with and without rewriting.

50 two-turn conversations (benchmarks/followup_pairs.py): the first question, then a
second one about the same article whose topic became "it". The follow-up is searched as
asked, rewritten by the keyword carry-over, and rewritten by the LLM (the embedded
SmolLM2-135M-Instruct on vLLM CPU, the fixed prompt of rag/followup.py); the second
question as the dataset has it (topic named) is the ceiling. The articles the pairs ask
about (all 98 with --all-articles) are indexed in one session with the product's
retriever (hybrid by default), as the API does.

    .venv/bin/python -m benchmarks.followup_bench --output docs/benchmarks/followup.md
    .venv/bin/python -m benchmarks.followup_bench --quick
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.common import (
    Stopwatch,
    command_line,
    describe_machine,
    first_hit_rank,
    load_covidqa,
    markdown_table,
    median,
    progress,
    write_report,
)
from benchmarks.covidqa_bench import bootstrap_difference
from benchmarks.followup_pairs import FollowUpPair, build_pairs
from benchmarks.generation_bench import free_port
from core.settings import Settings, load_settings
from rag.conversation import Turn
from rag.embedding import Embedder, configure_threads, make_embedder
from rag.followup import (
    KeywordRewriter,
    LlmRewriter,
    QuestionRewriter,
    clean_rewrite,
    usable_rewrite,
)
from rag.generation import Generator
from rag.pipeline import Ingestor
from rag.retrieval import Retriever, make_retriever
from rag.sessions import Session
from serving.launcher import EmbeddedVLLM, prepare_model
from serving.vllm_client import VLLMGenerator
from serving.wiring import make_store

K = 5
PAIRS = 50
QUICK_PAIRS = 5
VLLM_STARTUP_TIMEOUT_S = 1800
EXAMPLES_SHOWN = 6


class CountingLlmRewriter(LlmRewriter):
    """The LLM rewriter, counting the replies it cannot use (keywords are used instead)."""

    def __init__(self, generator: Generator) -> None:
        super().__init__(generator)
        self.fallbacks = 0

    async def reply(self, question: str, history: Sequence[Turn]) -> str:
        reply = await super().reply(question, history)
        if not usable_rewrite(clean_rewrite(reply), question, history):
            self.fallbacks += 1
        return reply


@dataclass
class Condition:
    name: str
    description: str
    ranks: list[int | None] = field(default_factory=list)
    rewrite_seconds: list[float] = field(default_factory=list)
    searched: list[str] = field(default_factory=list)

    def hits(self) -> np.ndarray:
        return np.array([r is not None and r <= K for r in self.ranks], dtype=float)


async def run_conditions(
    pairs: Sequence[FollowUpPair],
    session: Session,
    retriever: Retriever,
    llm: QuestionRewriter,
    llm_name: str,
) -> list[Condition]:
    keywords = KeywordRewriter()
    conditions = [
        Condition("named", "the second question as the dataset has it (topic named): the ceiling"),
        Condition("as asked", "the follow-up searched without rewriting"),
        Condition("keywords", "the follow-up with the previous question's content words carried"),
        Condition("llm", f"the follow-up rewritten by {llm_name} with the fixed prompt"),
        Condition("named + keywords", "the named question through the keyword rewriter"),
        Condition("named + llm", f"the named question through the {llm_name} rewriter"),
    ]
    by_name = {c.name: c for c in conditions}
    clock = Stopwatch()
    for number, pair in enumerate(pairs, start=1):
        history = [Turn(pair.first, pair.first, pair.first_answer)]
        plans: list[tuple[str, str, QuestionRewriter | None]] = [
            ("named", pair.original, None),
            ("as asked", pair.follow_up, None),
            ("keywords", pair.follow_up, keywords),
            ("llm", pair.follow_up, llm),
            ("named + keywords", pair.original, keywords),
            ("named + llm", pair.original, llm),
        ]
        for name, question, rewriter in plans:
            condition = by_name[name]
            started = time.perf_counter()
            searched = question if rewriter is None else await rewriter.rewrite(question, history)
            if rewriter is not None:
                condition.rewrite_seconds.append(time.perf_counter() - started)
            hits = retriever.search(session, searched, top_k=K)
            condition.searched.append(searched)
            condition.ranks.append(first_hit_rank([h.chunk.text for h in hits], pair.answers))
        if number % 10 == 0 or number == len(pairs):
            progress(f"asked {number}/{len(pairs)} pairs, {clock.elapsed():.0f} s")
    return conditions


def index_articles(
    settings: Settings, embedder: Embedder, articles: Sequence[tuple[str, str]]
) -> Session:
    session = make_store(settings, embedder).create()
    ingestor = Ingestor(settings, embedder)
    clock = Stopwatch()
    for number, (filename, text) in enumerate(articles, start=1):
        ingestor.ingest(session, text.encode("utf-8"), filename)
        if number % 10 == 0 or number == len(articles):
            progress(f"indexed {number}/{len(articles)} articles, {clock.elapsed():.0f} s")
    return session


async def measure(
    pairs: Sequence[FollowUpPair], session: Session, retriever: Retriever, vllm_url: str
) -> tuple[list[Condition], str, int]:
    generator = VLLMGenerator(vllm_url, timeout_s=300, retries=1)
    try:
        model = (await generator.info()).model
        llm = CountingLlmRewriter(generator)
        conditions = await run_conditions(pairs, session, retriever, llm, model)
        progress(f"LLM replies unusable (keywords used instead): {llm.fallbacks}")
        return conditions, model, llm.fallbacks
    finally:
        await generator.aclose()


def render(
    conditions: Sequence[Condition],
    pairs: Sequence[FollowUpPair],
    *,
    articles: int,
    model: str,
    fallbacks: int,
    settings: Settings,
    command: str,
    machine: str,
    total_s: float,
) -> str:
    rows = [
        [
            f"`{c.name}`",
            f"**{c.hits().mean():.3f}**",
            f"{int(c.hits().sum())}/{len(c.ranks)}",
            f"{median(c.rewrite_seconds) * 1000:.0f}" if c.rewrite_seconds else "-",
            c.description,
        ]
        for c in conditions
    ]
    table = markdown_table(
        ["searched", f"hit@{K}", "hits", "rewrite ms (median)", "what is searched"], rows
    )
    by_name = {c.name: c for c in conditions}
    comparisons = []
    for better, worse in [
        ("keywords", "as asked"),
        ("llm", "as asked"),
        ("keywords", "llm"),
        ("named + keywords", "named"),
        ("named + llm", "named"),
    ]:
        mean, low, high = bootstrap_difference(by_name[better].hits(), by_name[worse].hits())
        comparisons.append(
            f"- `{better}` minus `{worse}`: hit@{K} {mean:+.3f} (95% CI {low:+.3f} to {high:+.3f})"
        )
    unchanged = sum(
        s == p.original for s, p in zip(by_name["named + keywords"].searched, pairs, strict=True)
    )
    examples = "\n".join(
        f"| {p.first} | {p.follow_up} | {k} | {m} |"
        for p, k, m in list(
            zip(pairs, by_name["keywords"].searched, by_name["llm"].searched, strict=True)
        )[:EXAMPLES_SHOWN]
    )
    return f"""## Follow-up questions: retrieval with and without rewriting (COVID-QA)

{len(pairs)} two-turn conversations built by `benchmarks/followup_pairs.py` from COVID-QA
(two questions about the same article; in the second, the topic both share became a
pronoun, e.g. "What is the molecular structure of bovine coronavirus?" -> "What is the
molecular structure of it?"). {articles} articles indexed together in one session with
the product's retriever (hybrid={settings.hybrid}, chunk_size_tokens={settings.chunk_size_tokens}):
the articles the pairs ask about, or all 98 with `--all-articles`;
top-{K} passages per search; a hit is a passage containing the second question's answer.
The first turn's answer, shown to the LLM rewriter, is the dataset's answer to the first
question. Every condition searches the same session in the same run.

{table}

Paired differences over the same conversations (bootstrap, 2000 resamples):

{chr(10).join(comparisons)}

The keyword rewriter left {unchanged} of {len(pairs)} named (standalone) second questions
unchanged: it rewrites only questions that point back (it, its, they, this ...) or name
fewer than three content words.

The LLM is `{model}` (the embedded default) with `rag/followup.py`'s fixed prompt,
temperature 0, at most 64 tokens. A reply that is no question (the model answered
instead), repeats the earlier question, or is empty or runaway falls back to the keywords:
{fallbacks} of the {2 * len(pairs)} replies did.
`PGPT_FOLLOWUP_REWRITE=auto` picks the rewriter this table favours for this model.

First conversations and what each rewriter searched:

| first question | follow-up | keywords searched | LLM searched |
|---|---|---|---|
{examples}

Command (from the repository root; {total_s / 60:.1f} min wall in total):

```
{command}
```

Machine: {machine}
"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--pairs", type=int, default=PAIRS)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_PAIRS} pairs only")
    parser.add_argument(
        "--all-articles",
        action="store_true",
        help="index all 98 articles, not only the ones the pairs ask about",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--vllm-url", help="use this running vLLM server instead of starting one")
    parser.add_argument("--output", type=Path)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    clock = Stopwatch()
    configure_threads(args.threads)
    machine = describe_machine(args.threads)
    # Shared cores can make vLLM's start slow; a benchmark should wait rather than fail.
    settings = load_settings(threads=args.threads, vllm_startup_timeout_s=VLLM_STARTUP_TIMEOUT_S)
    articles, questions = load_covidqa()
    pairs = build_pairs(questions, QUICK_PAIRS if args.quick else args.pairs)
    chosen = range(len(articles)) if args.all_articles else sorted({p.article for p in pairs})
    with contextlib.ExitStack() as stack:
        vllm_url = args.vllm_url
        if not vllm_url:  # started first: a failure costs no indexing time
            quiet = stack.enter_context(open(os.devnull, "w"))
            server = EmbeddedVLLM(
                settings, port=free_port(), model_path=prepare_model(settings), output=quiet
            )
            progress("starting the embedded vLLM server")
            server.start()
            stack.callback(server.stop)
            vllm_url = server.url
        embedder = make_embedder(settings)
        session = index_articles(
            settings, embedder, [(articles[i].filename, articles[i].text) for i in chosen]
        )
        retriever = make_retriever(settings, embedder)
        conditions, model, fallbacks = asyncio.run(measure(pairs, session, retriever, vllm_url))
    report = render(
        conditions,
        pairs,
        articles=len(chosen),
        model=model,
        fallbacks=fallbacks,
        settings=settings,
        command=command_line("benchmarks.followup_bench", argv),
        machine=machine.describe(),
        total_s=clock.elapsed(),
    )
    write_report(report, args.output)
    progress(f"done in {clock.elapsed():.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
