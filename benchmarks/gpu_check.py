"""The GPU server's acceptance run (#35): one command, one report an operator sends back.

    make gpu-check        # on the A100 server with `docker compose up -d` running (docs/deploy.md)
    .venv/bin/python -m benchmarks.gpu_check --questions 2 --output gpu-check/gpu-check.md

It confirms from vLLM's own start-up log which attention backend serves the model
(FlashAttention on the GPU), that the index the product's sessions get is faiss-gpu, and runs
the answer benchmark (benchmarks/answer_bench.py) on COVID-QA and financebench-dev in `auto`
and `generate`. It writes one markdown report (and its results file, benchmarks/results.py)
with the machine's facts, a verdict, the answer table and every figure it could not measure,
with the reason. On a machine without a GPU it says so and decides nothing.

vLLM: against a configured server (PGPT_VLLM_URL, or --vllm-url) it reads the log given with
--vllm-log (`docker compose logs vllm`; `make gpu-check` saves it); with none configured it
starts the embedded vLLM CPU server as `pgpt up` does and reads that server's log.

Sizing for one A100 and 10 minutes (the model already in the cache, vLLM already up): 32
questions a set (financebench-dev has 32: all of them; COVID-QA: the first 32 of
answer_bench's seeded draw), each answered in `auto` and `generate` (and the model-first
`auto` beside it, replayed from the same model text). At Qwen2.5-7B-Instruct's 75-115
tokens/s for one stream (docs/benchmarks/a100.md) an answer of ~100 tokens takes ~1-1.5 s,
so the 128 answers take ~3-4 minutes; ingest (11 filings, 1,495 pages, parsed at ~230
pages/s a worker, embedded on the GPU) and start-up about 1-2 minutes more. If every answer
ran to the 384-token cap (~5 s each) they would take ~11 minutes, so no new question is
started after --budget-min (8) minutes of answering, shared between the sets, and the report
gives n of 32. On a CPU, --questions 2 (the embedded SmolLM2-135M writes ~8 tokens/s here).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.answer_bench import (
    MODEL_FIRST,
    QUESTIONS,
    SEED,
    Row,
    ask_all,
    choose_questions,
    figures,
    summaries,
)
from benchmarks.answer_sets import load_set
from benchmarks.common import (
    Stopwatch,
    command_line,
    describe_machine,
    markdown_table,
    progress,
    write_report,
)
from benchmarks.data import DataError
from benchmarks.embedding_cache import CachingEmbedder
from benchmarks.gpu_facts import (
    FLASH_ATTENTION,
    FaissFacts,
    GpuFacts,
    ServerFacts,
    VLLMLog,
    faiss_facts,
    gpu_facts,
    read_vllm_log,
    server_facts,
)
from benchmarks.results import Figure, write_results
from core.errors import PGPTError
from core.settings import AnswerMode, Settings, load_settings
from core.threads import configure_threads
from rag.answer_modes import resolved_order
from rag.embedding import Embedder, make_embedder, resolve_backend, resolve_batch_size
from serving.launcher import EmbeddedVLLM, prepare_model

SETS = ("covidqa", "financebench-dev")
CHECK_MODES = (AnswerMode.AUTO, AnswerMode.GENERATE)
GPU_QUESTIONS = 32
BUDGET_MIN = 8.0
LIMIT_S = 600.0  # the acceptance run's own limit on the GPU server
FILING_PARSE_TIMEOUT_S = 900.0  # as answer_bench: a long filing on a slow CPU
NOT_A_GPU = "NOT A GPU"
NOTHING_MISSING = "nothing: every figure above was measured."


@dataclass
class SetRun:
    key: str
    name: str = ""
    planned: int = 0
    rows: list[Row] = field(default_factory=list)
    gold_rule: str = ""
    error: str | None = None

    @property
    def asked(self) -> int:
        """Questions answered in every mode (the model-first replay counted with `auto`)."""
        labels = {row.label for row in self.rows}
        return len(self.rows) // len(labels) if labels else 0


@dataclass(frozen=True, slots=True)
class Facts:
    gpu: GpuFacts
    faiss: FaissFacts
    server: ServerFacts
    log: VLLMLog
    log_source: str | None  # where vLLM's log came from; None: no log
    settings: Settings
    embedder: Embedder

    @property
    def gpu_run(self) -> bool:
        """A GPU serves the model or the index; otherwise the run decides nothing."""
        return self.gpu.name is not None or self.log.device == "cuda"


# --- the run ---------------------------------------------------------------------------


@contextlib.contextmanager
def served(settings: Settings, log_path: Path | None) -> Iterator[tuple[Settings, Path | None]]:
    """The settings to answer with and vLLM's log: the configured server's, or the embedded
    CPU server's, started here (output to a log file in a temporary folder)."""
    if settings.vllm_url:
        yield settings, log_path
        return
    with tempfile.TemporaryDirectory(prefix="pgpt-gpu-check-") as folder:
        log = Path(folder) / "vllm.log"
        with log.open("w", encoding="utf-8") as sink:
            server = EmbeddedVLLM(
                settings, port=_free_port(), model_path=prepare_model(settings), output=sink
            )
            progress(f"starting the embedded vLLM CPU server on {server.url}")
            server.start()
            try:
                yield settings.model_copy(update={"vllm_url": server.url}), log
            finally:
                server.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def ask_sets(
    settings: Settings,
    embedder: Embedder,
    keys: Sequence[str],
    questions: int,
    budget_s: float,
    ingest: Embedder | None,
) -> list[SetRun]:
    """Each set's first ``questions`` of answer_bench's draw in `auto` and `generate`; the
    answering budget is shared: each set gets what is left divided by the sets left."""
    runs = []
    clock = Stopwatch()
    for number, key in enumerate(keys):
        run = SetRun(key)
        runs.append(run)
        try:
            answer_set = load_set(key)
        except DataError as exc:
            run.error = str(exc)
            progress(f"{key}: not run: {exc}")
            continue
        run.name, run.gold_rule = answer_set.name, answer_set.gold_rule
        chosen = choose_questions(answer_set.questions, QUESTIONS)[:questions]
        run.planned = len(chosen)
        set_settings = settings
        if key != "covidqa":
            set_settings = settings.model_copy(update={"parse_timeout_s": FILING_PARSE_TIMEOUT_S})
        share = max(budget_s - clock.elapsed(), 0.0) / (len(keys) - number)
        progress(f"{answer_set.name}: {len(chosen)} questions, {share / 60:.1f} min budget")
        try:
            run.rows = await ask_all(
                set_settings, None, embedder, answer_set, chosen, share, CHECK_MODES, ingest
            )
        except (DataError, PGPTError) as exc:
            run.error = getattr(exc, "message", None) or str(exc)
            progress(f"{answer_set.name}: stopped: {run.error}")
    return runs


# --- the report --------------------------------------------------------------------------


def verdict(facts: Facts, runs: Sequence[SetRun], seconds: float) -> tuple[str, list[str]]:
    """The headline and, on a GPU, what failed."""
    if not facts.gpu_run:
        return (
            f"**{NOT_A_GPU}.** This machine has no GPU (torch sees no CUDA device) and vLLM "
            f"ran on `{facts.log.device or 'an unknown device'}`: it says nothing of the A100. "
            "It shows that the acceptance command runs end to end; its figures are this "
            "CPU's.",
            [],
        )
    failed = []
    if facts.log.attention_backend != FLASH_ATTENTION:
        failed.append(
            f"vLLM's attention backend is {facts.log.attention_backend or 'not named in its log'}"
            f", not {FLASH_ATTENTION}"
        )
    if facts.faiss.used != "cuda":
        failed.append(f"the session index is {facts.faiss.index_class or 'refused'}, not faiss-gpu")
    for run in runs:
        if run.error or run.asked < run.planned:
            failed.append(f"{run.name or run.key}: {run.asked} of {run.planned} questions asked")
    if seconds > LIMIT_S:
        failed.append(f"the run took {seconds / 60:.1f} min, over {LIMIT_S / 60:.0f}")
    if failed:
        return "**FAIL** on the GPU: " + "; ".join(failed) + ".", failed
    return (
        f"**PASS** on the GPU: FlashAttention in vLLM's log, faiss-gpu sessions, every "
        f"question answered, {seconds / 60:.1f} min.",
        [],
    )


def not_measured(facts: Facts, runs: Sequence[SetRun], budget_min: float) -> list[str]:
    """Every figure the run could not measure, with the reason."""
    log, gpu, faiss = facts.log, facts.gpu, facts.faiss
    missing = []
    if gpu.name is None:
        cuda = f"torch {gpu.torch}, " + (
            f"built for CUDA {gpu.torch_cuda}" if gpu.torch_cuda else "a CPU build"
        )
        missing.append(f"GPU name and memory: torch sees no CUDA device ({cuda}).")
    if facts.log_source is None:
        missing.append(
            "vLLM's attention backend, dtype and device: no vLLM log was given "
            "(`--vllm-log`; on the server `docker compose logs vllm`)."
        )
    elif log.attention_backend is None:
        reason = (
            "vLLM 0.32 on a CPU takes CPU_ATTN for this model without logging its choice "
            "(vllm/platforms/cpu.py)"
            if log.device == "cpu"
            else "the log may not start at vLLM's start-up (restart vllm, then run again)"
        )
        missing.append(f"The attention backend: vLLM's log names none: {reason}.")
    if facts.log_source is not None and log.dtype is None:
        missing.append("vLLM's dtype and device: its log has no engine start-up line.")
    if not facts.gpu_run:
        missing += [
            f"FlashAttention: vLLM ran on `{log.device or 'unknown'}`; FlashAttention exists "
            "only on an NVIDIA GPU.",
            "The production model's answers and latency (Qwen2.5-7B-Instruct on an A100): "
            f"`{facts.server.served or 'the model'}` answered here, on this CPU.",
            "Whether the run fits 10 minutes on an A100: these timings are this CPU's.",
        ]
    if faiss.used != "cuda":
        missing.append(
            f"faiss-gpu: installed is {faiss.distribution} {faiss.version}, which sees "
            f"{faiss.gpus} GPU(s); sessions get {faiss.index_class or 'no index'} "
            f"(PGPT_INDEX_DEVICE={faiss.configured})."
        )
    for run in runs:
        if run.error:
            missing.append(f"{run.name or run.key}: not run: {run.error}")
        elif run.asked < run.planned:
            missing.append(
                f"{run.name}: {run.asked} of {run.planned} questions answered in each mode: "
                f"the {budget_min:g}-minute answering budget ran out."
            )
    if facts.server.error:
        missing.append(f"vLLM's version and model from its server: {facts.server.error}")
    return missing


def facts_table(facts: Facts) -> str:
    gpu, faiss, log, server, settings = (
        facts.gpu,
        facts.faiss,
        facts.log,
        facts.server,
        facts.settings,
    )
    machine = describe_machine(settings.threads)
    gpu_text = (
        f"{gpu.name}, {gpu.memory_gib:.1f} GiB ({gpu.free_gib:.1f} GiB free when checked)"
        if gpu.name and gpu.memory_gib is not None and gpu.free_gib is not None
        else "no GPU (torch sees no CUDA device)"
    )
    backend = (
        f"**{log.attention_backend}**: `{log.backend_line}`"
        if log.attention_backend
        else f"none named in vLLM's log (device `{log.device or 'unknown'}`)"
        if facts.log_source
        else "unknown: no vLLM log given"
    )
    order = resolved_order(settings.auto_order, server.served)
    rows = [
        ["GPU", gpu_text],
        ["CPU", f"{machine.cpu}, {machine.logical_cpus} cores, {machine.ram_gib:.0f} GiB RAM"],
        ["torch", f"{gpu.torch} (CUDA {gpu.torch_cuda or 'none: CPU build'})"],
        ["vLLM", f"{log.version or server.version or 'unknown'} at {server.url}"],
        ["vLLM device (its log)", f"`{log.device or 'unknown'}`"],
        ["attention backend (vLLM's log)", backend],
        ["model", f"{log.model or server.root or 'unknown'} (served as `{server.served}`)"],
        ["dtype (vLLM's log)", f"`{log.dtype or 'unknown'}`"],
        ["context length", f"{server.max_model_len or 'unknown'} tokens"],
        ["KV cache (vLLM's log)", " / ".join(filter(None, [log.kv_cache, log.concurrency])) or "-"],
        [
            "FAISS",
            f"{faiss.distribution} {faiss.version}, get_num_gpus() = {faiss.gpus}; "
            f"PGPT_INDEX_DEVICE={faiss.configured}; a session's index: "
            f"{faiss.index_class or 'refused: ' + str(faiss.error)} on `{faiss.used}`"
            f"{', found its vectors' if faiss.searched else ''}",
        ],
        [
            "embedder",
            f"{facts.embedder.name}, {resolve_backend(settings)} on "
            f"`{facts.embedder.device}` in {facts.embedder.dtype}",
        ],
        [
            "answers",
            f"top_k {settings.top_k}, up to {settings.answer_max_tokens} tokens, temperature "
            f"0, `auto` order {order} (PGPT_AUTO_ORDER={settings.auto_order})",
        ],
        ["vLLM log read from", f"`{facts.log_source}`" if facts.log_source else "none"],
    ]
    return markdown_table(["", ""], rows)


def answers_table(runs: Sequence[SetRun]) -> str:
    rows: list[list[object]] = []
    for run in runs:
        for s in summaries(run.rows):
            rows.append(
                [
                    run.name,
                    f"`{s.label}`",
                    f"{s.n} of {run.planned}",
                    f"{s.containment:.3f}",
                    f"{s.containment_as_answer:.3f}",
                    f"{len(s.shown) / s.n:.3f}",
                    f"{s.false_support:.3f}" if s.false_support is not None else "n/a",
                    f"{s.evidence_share:.3f}",
                    f"{s.median_latency_s:.2f}",
                ]
            )
    headers = [
        "set",
        "mode",
        "questions",
        "holds the gold answer",
        "holds it as the answer",
        "shown as the answer",
        "false support",
        "unverified evidence",
        "median latency s",
    ]
    return markdown_table(headers, rows)


def report(
    facts: Facts,
    runs: Sequence[SetRun],
    argv: Sequence[str],
    seconds: float,
    budget_min: float,
) -> str:
    headline, _ = verdict(facts, runs, seconds)
    missing = not_measured(facts, runs, budget_min)
    rules = "\n".join(f"- {run.name}: {run.gold_rule}." for run in runs if run.gold_rule)
    finished = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""## GPU acceptance run

{headline}

Command: `{command_line("benchmarks.gpu_check", argv)}`; wall time {seconds:.0f} s
({seconds / 60:.1f} min), finished {finished}.

### The machine

{facts_table(facts)}

### Answers

Each question is asked over its own document (benchmarks/answer_bench.py: the real loader,
chunker, embedder and retrieval, top 5, temperature 0), the first questions of its seeded
draw (seed {SEED}), in `auto` and `generate`; `{MODEL_FIRST}` is the model-first `auto`
replayed on the same model text. *holds the gold answer*: counted over every reply, whether
shown as the answer or as unverified evidence:
{rules}

{answers_table(runs)}

### Not measured

{chr(10).join(f"- {line}" for line in missing or [NOTHING_MISSING])}
"""


def _log_source(given: Path | None, read: Path | None) -> str | None:
    if given is not None:
        return str(given)
    return "the embedded server's output" if read is not None else None


def machine_line(facts: Facts) -> str:
    """The facts in one line, for the results file."""
    gpu, log, faiss = facts.gpu, facts.log, facts.faiss
    where = f"{gpu.name} ({gpu.memory_gib:.0f} GiB)" if gpu.name and gpu.memory_gib else "no GPU"
    return (
        f"{where}; vLLM {log.version or facts.server.version} on {log.device}, attention "
        f"{log.attention_backend or 'not named in its log'}, {log.model or facts.server.root} "
        f"in {log.dtype}; {faiss.distribution} {faiss.version}, sessions on {faiss.used}; "
        f"embedder on {facts.embedder.device}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, help="write the markdown report here")
    parser.add_argument(
        "--questions",
        type=int,
        default=GPU_QUESTIONS,
        help=f"questions a set (default {GPU_QUESTIONS}, sized for an A100; 2 on a CPU)",
    )
    parser.add_argument(
        "--budget-min",
        type=float,
        default=BUDGET_MIN,
        help="start no new question after this many minutes of answering",
    )
    parser.add_argument("--sets", default=",".join(SETS), help=f"of {', '.join(SETS)}")
    parser.add_argument("--vllm-url", help="this vLLM server instead of PGPT_VLLM_URL")
    parser.add_argument("--vllm-log", type=Path, help="that server's log (docker compose logs)")
    parser.add_argument("--threads", type=int, help="CPU threads [default: PGPT_THREADS]")
    parser.add_argument("--cache", action="store_true", help="ingest with the embedding cache")
    parser.add_argument(
        "--require-gpu", action="store_true", help="exit 1 unless it ran on a GPU and passed"
    )
    args = parser.parse_args(argv)
    keys = [key for key in args.sets.split(",") if key]
    if unknown := [key for key in keys if key not in SETS]:
        parser.error(f"unknown sets {unknown}; known: {', '.join(SETS)}")
    argv = list(argv) if argv is not None else sys.argv[1:]
    clock = Stopwatch()
    overrides: dict[str, object] = {"threads": args.threads} if args.threads else {}
    if args.vllm_url:
        overrides["vllm_url"] = args.vllm_url
    settings = load_settings(**overrides)
    configure_threads(settings.threads)
    embedder = make_embedder(settings)
    gpu = gpu_facts()
    faiss = faiss_facts(settings, embedder)
    caching = CachingEmbedder.ours(embedder, resolve_batch_size(settings)) if args.cache else None
    with served(settings, args.vllm_log) as (answering, log_path):
        key = answering.vllm_api_key
        server = server_facts(
            str(answering.vllm_url), key.get_secret_value() if key is not None else None
        )
        runs = asyncio.run(
            ask_sets(answering, embedder, keys, args.questions, args.budget_min * 60, caching)
        )
        log_text = log_path.read_text(encoding="utf-8", errors="replace") if log_path else ""
    if caching is not None:
        caching.save()
    facts = Facts(
        gpu,
        faiss,
        server,
        read_vllm_log(log_text),
        _log_source(args.vllm_log, log_path),
        settings,
        embedder,
    )
    seconds = clock.elapsed()
    text = report(facts, runs, argv, seconds, args.budget_min)
    write_report(text, args.output)
    found = [figure for run in runs for figure in figures(run.rows, run.name)]
    found.append(Figure("GPU acceptance", "wall time", seconds, "s", higher_is_better=False))
    write_results(
        args.output,
        found,
        command=command_line("benchmarks.gpu_check", argv),
        machine=machine_line(facts),
    )
    _, failed = verdict(facts, runs, seconds)
    return 1 if args.require_gpu and (failed or not facts.gpu_run) else 0


if __name__ == "__main__":
    raise SystemExit(main())
