"""Latency of answers on the embedded stack, beside what these cores can do at best.

Starts the embedded vLLM exactly as `pgpt vllm` does (serving.launcher) and `pgpt serve`
against it, indexes a few COVID-QA articles in one session, then measures:

- prefill: chat completions of ~500, ~1,500 and ~3,000 new prompt tokens with one output
  token, straight to vLLM: prompt tokens per second;
- answers through the API (`/query`, top_k 5) per answer mode over COVID-QA questions about
  those articles: time to first token and total, p50 and p95, and, for auto, those that
  asked the model apart from the confident quotes;
- the physical limit: the bf16 matmul rate of these cores measured in the same run, and the
  prefill rate it allows for this model (its FLOPs per prompt token from its config).

    flock /tmp/pgpt-cpu.lock .venv/bin/python -m benchmarks.latency_bench \
        --output docs/benchmarks/latency-run.md
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

from benchmarks.common import (
    command_line,
    describe_machine,
    load_covidqa,
    markdown_table,
    median,
    progress,
    write_report,
)
from benchmarks.load_bench import free_port, wait_healthy
from benchmarks.results import Figure, write_results
from core.settings import AnswerMode, Settings, load_settings
from serving.launcher import EmbeddedVLLM, model_dir, prepare_model

LOOPBACK = "127.0.0.1"
PREFILL_TARGETS = (500, 1500, 3000)
TOKENS_PER_WORD = 1.95  # COVID-QA's words through SmolLM2's tokenizer, near enough to aim at
TOP_K = 5
REQUEST_TIMEOUT_S = 600.0


# --- the stack ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stack:
    vllm_url: str
    api_url: str
    command: list[str]
    environment: dict[str, str]


@contextmanager
def embedded_stack(settings: Settings) -> Iterator[Stack]:
    """The launcher's vLLM and `pgpt serve` on free loopback ports; both stopped after."""
    vllm = EmbeddedVLLM(settings, host=LOOPBACK, port=free_port(), verbose=False)
    api_port = free_port()
    api: subprocess.Popen[bytes] | None = None
    progress(f"starting vLLM on {vllm.url} ...")
    vllm.start()
    try:
        env = {**os.environ, "PGPT_VLLM_URL": vllm.url}
        env.pop("PGPT_API_KEY", None)
        progress(f"starting the API on port {api_port} ...")
        serve = ["serve", "--host", LOOPBACK, "--port", str(api_port)]
        api = subprocess.Popen(
            [sys.executable, "-m", "serving.cli", *serve],
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        api_url = f"http://{LOOPBACK}:{api_port}"
        wait_healthy(f"{api_url}/healthz", api, generator=True)
        launched = vllm.environment()
        shown = {k: launched[k] for k in sorted(launched) if k not in os.environ or k in SHOWN_ENV}
        yield Stack(vllm.url, api_url, vllm.command(model_dir(settings)), shown)
    finally:
        if api is not None:
            api.terminate()
            api.wait(timeout=60)
        vllm.stop()


SHOWN_ENV = ("LD_PRELOAD", "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "VLLM_CPU_OMP_THREADS_BIND")


# --- prefill -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prefill:
    prompt_tokens: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.prompt_tokens / self.seconds


def measure_prefill(vllm_url: str, words: Sequence[str], target: int, seed: int) -> Prefill:
    """One chat completion of about ``target`` new prompt tokens and one output token."""
    rng = random.Random(seed)
    text = " ".join(rng.choice(words) for _ in range(int(target / TOKENS_PER_WORD)))
    with httpx.Client(base_url=vllm_url, timeout=REQUEST_TIMEOUT_S) as client:
        model = client.get("/v1/models").json()["data"][0]["id"]
        request = {
            "model": model,
            "messages": [{"role": "user", "content": f"{seed} {text}"}],
            "max_tokens": 1,
        }
        started = time.perf_counter()
        response = client.post("/v1/chat/completions", json=request)
        seconds = time.perf_counter() - started
    response.raise_for_status()
    return Prefill(int(response.json()["usage"]["prompt_tokens"]), seconds)


# --- answers through the API -------------------------------------------------------


@dataclass
class ModeTimings:
    mode: AnswerMode
    ttft_s: list[float] = field(default_factory=list)  # answers that asked the model
    total_s: list[float] = field(default_factory=list)  # every answer
    total_asked_s: list[float] = field(default_factory=list)  # answers that asked the model
    failures: int = 0


def ask(client: httpx.Client, session: str, question: str, mode: AnswerMode) -> dict[str, object]:
    body = {
        "question": question,
        "top_k": TOP_K,
        "answer_mode": mode.value,
        "use_conversation": False,
    }
    response = client.post(f"/v1/sessions/{session}/query", json=body)
    response.raise_for_status()
    result: dict[str, object] = response.json()
    return result


def measure_answers(
    api_url: str,
    documents: Sequence[tuple[str, str]],
    questions: Sequence[str],
    modes: Sequence[AnswerMode],
) -> tuple[list[ModeTimings], dict[str, object]]:
    """Each mode's timings, and /healthz's generator after them (its prefill rate)."""
    results = [ModeTimings(mode) for mode in modes]
    with httpx.Client(base_url=api_url, timeout=REQUEST_TIMEOUT_S) as client:
        session = client.post("/v1/sessions").raise_for_status().json()["session_id"]
        files = [("files", (name, text.encode(), "text/plain")) for name, text in documents]
        client.post(f"/v1/sessions/{session}/documents", files=files).raise_for_status()
        rounds = len(questions) // len(modes)
        for number in range(rounds):
            # Modes take turns (the same load for each) on questions of their own: one
            # question asked twice would find its prompt in vLLM's prefix cache.
            for timings, question in zip(results, questions[number * len(modes) :], strict=False):
                try:
                    answer = ask(client, session, question, timings.mode)
                except httpx.HTTPError as exc:
                    progress(f"question {number} ({timings.mode.value}) failed: {exc}")
                    timings.failures += 1
                    continue
                spent = answer["timings"]
                assert isinstance(spent, dict)
                total = float(spent["total_ms"]) / 1000
                timings.total_s.append(total)
                if answer["model"]:
                    timings.total_asked_s.append(total)
                    if spent["ttft_ms"] is not None:
                        timings.ttft_s.append(float(spent["ttft_ms"]) / 1000)
            progress(f"round {number + 1}/{rounds}: a question answered in every mode")
        health: dict[str, object] = client.get("/healthz").json()["generator"]
        progress(f"/healthz generator: {json.dumps(health)}")
    return results, health


# --- the physical limit ----------------------------------------------------------------


def matmul_gflops(threads: int, size: int = 2048, repeats: int = 5) -> float:
    """The best bf16 matmul rate of ``threads`` threads (torch): the cores' practical peak."""
    import torch

    torch.set_num_threads(threads)
    a = torch.randn(size, size, dtype=torch.bfloat16)
    b = torch.randn(size, size, dtype=torch.bfloat16)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e9


def gflop_per_prompt_token(settings: Settings, prompt_tokens: int) -> float:
    """Matmul FLOPs per token of a prompt this long: the layers' weights (not the embedding
    table, which is a lookup) and causal attention over half the prompt on average."""
    config = json.loads((model_dir(settings) / "config.json").read_text(encoding="utf-8"))
    hidden, layers = config["hidden_size"], config["num_hidden_layers"]
    head_dim = config.get("head_dim") or hidden // config["num_attention_heads"]
    q_width = config["num_attention_heads"] * head_dim
    kv_width = config["num_key_value_heads"] * head_dim
    per_layer_weights = hidden * (q_width + 2 * kv_width) + q_width * hidden
    per_layer_weights += 3 * hidden * config["intermediate_size"]
    linear = 2 * layers * per_layer_weights
    attention = 2 * 2 * layers * q_width * prompt_tokens / 2
    return float(linear + attention) / 1e9


# --- the report ------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> str:
    return f"{np.percentile(values, q):.2f} s" if values else "-"


def report(
    argv: Sequence[str],
    machine: str,
    stack: Stack,
    prefills: dict[int, list[Prefill]],
    answers: Sequence[ModeTimings],
    health: dict[str, object],
    peak: dict[int, float],
    settings: Settings,
    articles: int,
    questions: int,
    minutes: float,
) -> str:
    lines = [
        "## Latency on the embedded stack",
        "",
        f"Produced by `flock /tmp/pgpt-cpu.lock {command_line('benchmarks.latency_bench', argv)}` "
        f"in {minutes:.1f} min.",
        "",
        f"Machine: {machine}",
        "",
        "vLLM as the launcher starts it: `"
        + " ".join(stack.command[1:])
        + "` with "
        + ", ".join(f"{k}={v}" for k, v in stack.environment.items())
        + ".",
        "",
        "### Prefill (straight to vLLM, one output token, new prompts)",
        "",
    ]
    rows = []
    for target, runs in prefills.items():
        tokens = int(np.median([r.prompt_tokens for r in runs]))
        gflop = gflop_per_prompt_token(settings, tokens)
        limits = " / ".join(f"{peak[t] / gflop:,.0f}" for t in sorted(peak))
        rows.append([
            f"~{target:,}", f"{tokens:,}",
            f"{np.median([r.seconds for r in runs]):.2f} s",
            f"{np.median([r.rate for r in runs]):,.0f}",
            f"{gflop:.3f}", limits,
        ])  # fmt: skip
    threads = " / ".join(f"{t} thread{'s' * (t > 1)}" for t in sorted(peak))
    lines.append(markdown_table(
        ["prompt", "tokens (median)", "time (median)", "tokens/s (median)", "GFLOP/token",
         f"limit tokens/s at the bf16 matmul peak ({threads})"],
        rows,
    ))  # fmt: skip
    peaks = ", ".join(f"{peak[t]:.0f} GFLOP/s with {t} thread(s)" for t in sorted(peak))
    lines += [
        "",
        f"bf16 matmul peak in this run (2048x2048, best of 5): {peaks}. The limit column is "
        "that rate over the model's FLOPs per prompt token, the bound for a kernel as fast as "
        "the probe; the probe shares the load too, so under load vLLM can pass it.",
        "",
        f"### Answers through the API (top_k {TOP_K}, {questions} COVID-QA questions per mode "
        f"over {articles} articles, non-streamed `/query`, timings as the API reports them)",
        "",
    ]
    rows = []
    for t in answers:
        rows.append([
            t.mode.value, f"{len(t.total_s)} ({len(t.total_asked_s)} asked the model)",
            pct(t.ttft_s, 50), pct(t.ttft_s, 95),
            pct(t.total_asked_s, 50), pct(t.total_asked_s, 95),
            pct(t.total_s, 50), pct(t.total_s, 95), str(t.failures),
        ])  # fmt: skip
    lines.append(markdown_table(
        ["mode", "answers", "TTFT p50 (model asked)", "TTFT p95", "total p50 (model asked)",
         "total p95 (model asked)", "total p50 (all)", "total p95 (all)", "failures"],
        rows,
    ))  # fmt: skip
    lines += [
        "",
        f"/healthz after the answers: prefill {health.get('prefill_tokens_per_s')} tokens/s "
        f"over the last minute, slow={health.get('slow')}.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=5)
    parser.add_argument("--questions", type=int, default=10, help="per answer mode")
    parser.add_argument("--prefill-repeats", type=int, default=3)
    parser.add_argument("--modes", default="auto,generate,extract")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    argv = list(sys.argv[1:] if argv is None else argv)
    started = time.perf_counter()
    settings = load_settings()
    prepare_model(settings)
    machine = describe_machine(settings.threads)
    articles, all_questions = load_covidqa(articles=args.articles)
    rng = random.Random(0)
    modes = [AnswerMode(m) for m in args.modes.split(",")]
    wanted = min(args.questions * len(modes), len(all_questions))
    questions = [q.text for q in rng.sample(all_questions, wanted)]
    words = " ".join(a.text for a in articles).split()
    peak = {t: matmul_gflops(t) for t in sorted({1, os.cpu_count() or 1})}
    with embedded_stack(settings) as stack:
        prefills: dict[int, list[Prefill]] = {}
        for target in PREFILL_TARGETS:
            prefills[target] = [
                measure_prefill(stack.vllm_url, words, target, seed=time.time_ns())
                for _ in range(args.prefill_repeats)
            ]
            progress(f"prefill ~{target}: {[round(p.rate) for p in prefills[target]]} tokens/s")
        documents = [(a.filename, a.text) for a in articles]
        answers, health = measure_answers(stack.api_url, documents, questions, modes)
    minutes = (time.perf_counter() - started) / 60
    text = report(
        argv, machine.describe(), stack, prefills, answers, health, peak, settings,
        len(articles), len(questions) // len(modes), minutes,
    )  # fmt: skip
    write_report(text, args.output)
    command = command_line("benchmarks.latency_bench", argv)
    found = figures(prefills, answers)
    write_results(args.output, found, command=command, machine=machine.describe())


def figures(prefills: dict[int, list[Prefill]], answers: Sequence[ModeTimings]) -> list[Figure]:
    """Prefill rate per prompt size and time to first token / total per answer mode."""
    found = [
        Figure(
            "Latency",
            f"embedded vLLM prefill, ~{target:,} new prompt tokens",
            median([p.rate for p in runs]),
            "tokens/s",
            headline=target == PREFILL_TARGETS[0],
            digits=0,
        )
        for target, runs in prefills.items()
    ]
    for timings in answers:
        measured = {
            "time to first token (model asked)": timings.ttft_s,
            "total (model asked)": timings.total_asked_s,
            "total (every answer)": timings.total_s,
        }
        found += [
            Figure(
                "Latency",
                f"`{timings.mode.value}` through the API, {name} p50",
                median(values),
                "s",
                higher_is_better=False,
                headline=True,
                digits=2,
            )
            for name, values in measured.items()
            if values
        ]
    return found


if __name__ == "__main__":
    main()
