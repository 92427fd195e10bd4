"""Load: concurrent clients mixing uploads, searches and questions against one real server.

Each client owns a session and, until the time is up, picks an operation at random
(seeded): upload a document (a generated text or Markdown file with a unique fact,
or the real crazyones.pdf), search it, or ask a question (answered by the embedded
vLLM). Afterwards every client checks that each document it was told was stored is
listed and, for the generated ones, still found by its unique fact; every passage it
ever got back must come from its own session. Reported: requests by status, p50/p95
latency per operation, lost documents and foreign passages (both must be zero).

Without --api-url it starts the real deployment itself, `pgpt vllm` and `pgpt serve`
on free loopback ports (the converted model must be in the cache: `make setup`):

    .venv/bin/python -m benchmarks.load_bench --output docs/benchmarks/load.md
    .venv/bin/python -m benchmarks.load_bench --api-url http://127.0.0.1:8000 --duration 60
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import (
    PDFS,
    command_line,
    describe_machine,
    markdown_table,
    progress,
    write_report,
)
from benchmarks.results import Figure, write_results

LOOPBACK = "127.0.0.1"
OPERATIONS = ("upload", "search", "query")
REQUEST_TIMEOUT_S = 600.0
START_TIMEOUT_S = 900.0

PLACES = ["Lisbon", "Tromsø", "Valparaíso", "Kyoto", "Nairobi", "Reykjavík", "Hobart", "Quito"]
THINGS = ["lighthouse", "tram depot", "seed vault", "observatory", "ferry", "bell tower"]
COLOURS = ["amber", "cobalt", "crimson", "jade", "ochre", "violet", "silver", "teal"]
FILLER = [
    "The records were copied by hand into a ledger kept in the harbour office.",
    "Maintenance crews inspect the structure every spring before the storms arrive.",
    "Visitors may only enter with a guide, and photographs require written permission.",
    "The archive lists every repair, its cost, and the name of the foreman in charge.",
    "Funding comes from a small municipal tax and the sale of postcards and maps.",
    "During the winter months the opening hours are shortened to the afternoon.",
    "An old map in the town hall shows the original layout before the fire of 1911.",
    "Local schools visit twice a year to learn how the machinery works.",
]
QUESTIONS = [
    "What colour is the {thing} in {place} painted?",
    "How many visitors does the {thing} in {place} receive?",
    "Who keeps the records of the {thing}?",
    "When are the opening hours shortened?",
]


@dataclass(frozen=True, slots=True)
class LoadConfig:
    clients: int = 16
    duration_s: float = 60.0
    # Relative weights of the operations each client picks from.
    upload_weight: float = 0.2
    search_weight: float = 0.5
    query_weight: float = 0.3
    pdf_share: float = 0.3  # of uploads: the real crazyones.pdf instead of generated text
    top_k: int = 3
    answer_max_tokens: int = 32
    seed: int = 7


@dataclass(frozen=True, slots=True)
class Sample:
    operation: str
    status: int  # 0: no HTTP response (connection error or timeout)
    seconds: float
    detail: str = ""


@dataclass
class Upload:
    document_id: str
    filename: str
    fact: str | None  # the unique sentence of a generated document


@dataclass
class LoadReport:
    config: LoadConfig
    wall_s: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    lost_documents: list[str] = field(default_factory=list)
    foreign_passages: int = 0
    documents: int = 0
    client_errors: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, sample: Sample) -> None:
        with self._lock:
            self.samples.append(sample)

    def failed(self, message: str) -> None:
        with self._lock:
            self.client_errors.append(message)

    @property
    def server_errors(self) -> list[Sample]:
        """5xx answers and requests that got no answer at all."""
        return [s for s in self.samples if s.status >= 500 or s.status == 0]

    @property
    def refusals(self) -> list[Sample]:
        return [s for s in self.samples if 400 <= s.status < 500]

    def latencies(self, operation: str) -> list[float]:
        return sorted(s.seconds for s in self.samples if s.operation == operation)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    if not values:
        return float("nan")
    rank = max(1, min(len(values), round(q / 100 * len(values) + 0.5)))
    return values[rank - 1]


# --- documents ------------------------------------------------------------------------


def generated_document(rng: random.Random, client: int, serial: int) -> tuple[str, bytes, str]:
    """A text or Markdown file whose one unique sentence identifies it."""
    thing, place, colour = rng.choice(THINGS), rng.choice(PLACES), rng.choice(COLOURS)
    visitors = rng.randint(1_000, 99_999)
    fact = (
        f"Client {client} record {serial}: the {thing} in {place} is painted {colour} "
        f"and received {visitors} visitors last year."
    )
    paragraphs = [fact, *rng.sample(FILLER, k=5)]
    rng.shuffle(paragraphs)
    if rng.random() < 0.5:
        body = f"# The {thing} of {place}\n\n" + "\n\n".join(paragraphs)
        return f"client{client}-{serial}.md", body.encode(), fact
    return f"client{client}-{serial}.txt", "\n\n".join(paragraphs).encode(), fact


# --- one client -----------------------------------------------------------------------


class Client:
    def __init__(self, number: int, api_url: str, config: LoadConfig, report: LoadReport) -> None:
        self.number = number
        self.config = config
        self.report = report
        self.rng = random.Random(config.seed * 1_000 + number)
        self.http = httpx.Client(base_url=api_url, timeout=REQUEST_TIMEOUT_S)
        self.session_id = ""
        self.uploads: dict[str, Upload] = {}
        self.serial = 0
        self.crazyones = (PDFS / "crazyones.pdf").read_bytes()

    def request(
        self, operation: str, method: str, url: str, **kwargs: Any
    ) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self.report.add(Sample(operation, 0, time.perf_counter() - started, type(exc).__name__))
            return None
        detail = "" if response.status_code < 400 else response.text[:200]
        self.report.add(
            Sample(operation, response.status_code, time.perf_counter() - started, detail)
        )
        return response

    def run(self, deadline: float) -> None:
        try:
            if not self.new_session():
                return
            self.upload()
            operations, weights = self.mix()
            while time.monotonic() < deadline:
                operation = self.rng.choices(operations, weights)[0]
                getattr(self, operation)()
            self.verify()
            self.request("delete session", "DELETE", f"/v1/sessions/{self.session_id}")
        except Exception as exc:  # a bug in the client must show, not vanish in a thread
            self.report.failed(f"client {self.number}: {type(exc).__name__}: {exc}")
        finally:
            self.http.close()

    def new_session(self) -> bool:
        created = self.request("create session", "POST", "/v1/sessions")
        if created is None or created.status_code != 201:
            self.report.failed(f"client {self.number}: no session")
            return False
        self.session_id = created.json()["session_id"]
        self.uploads = {}
        return True

    def mix(self) -> tuple[list[str], list[float]]:
        """The operations this client picks from, and their weights."""
        c = self.config
        return list(OPERATIONS), [c.upload_weight, c.search_weight, c.query_weight]

    @property
    def base(self) -> str:
        return f"/v1/sessions/{self.session_id}"

    def upload(self) -> None:
        self.serial += 1
        if self.rng.random() < self.config.pdf_share:
            filename, data, fact = f"crazyones-{self.serial}.pdf", self.crazyones, None
            media_type = "application/pdf"
        else:
            filename, data, fact = generated_document(self.rng, self.number, self.serial)
            media_type = "text/markdown" if filename.endswith(".md") else "text/plain"
        response = self.request(
            "upload",
            "POST",
            f"{self.base}/documents",
            files=[("files", (filename, data, media_type))],
        )
        if response is not None and response.status_code == 200:
            for document in response.json()["documents"]:
                self.uploads[document["document_id"]] = Upload(
                    document["document_id"], document["filename"], fact
                )

    def question(self) -> str:
        template = self.rng.choice(QUESTIONS)
        return template.format(thing=self.rng.choice(THINGS), place=self.rng.choice(PLACES))

    def search(self) -> None:
        response = self.request(
            "search",
            "POST",
            f"{self.base}/search",
            json={"query": self.question(), "top_k": self.config.top_k},
        )
        if response is not None and response.status_code == 200:
            self.check_own(response.json()["results"])

    def query(self) -> None:
        body = {
            "question": self.question(),
            "top_k": self.config.top_k,
            "max_tokens": self.config.answer_max_tokens,
        }
        response = self.request("query", "POST", f"{self.base}/query", json=body)
        if response is not None and response.status_code == 200:
            self.check_own(response.json()["sources"])

    def check_own(self, passages: list[dict[str, Any]]) -> None:
        foreign = sum(1 for p in passages if p["document_id"] not in self.uploads)
        if foreign:
            with self.report._lock:
                self.report.foreign_passages += foreign

    def verify(self) -> None:
        """Every stored document is listed, and every generated one is found by its fact."""
        listed = self.request("verify", "GET", f"{self.base}/documents")
        listed_ids = set()
        if listed is not None and listed.status_code == 200:
            listed_ids = {d["document_id"] for d in listed.json()["documents"]}
        lost = {  # document id -> why it counts as lost
            u.document_id: f"{u.filename}, not listed"
            for u in self.uploads.values()
            if u.document_id not in listed_ids
        }
        for upload in self.uploads.values():
            if upload.fact is None or upload.document_id in lost:
                continue
            found = self.request(
                "verify", "POST", f"{self.base}/search", json={"query": upload.fact, "top_k": 5}
            )
            results = (
                found.json()["results"] if found is not None and found.status_code == 200 else []
            )
            if upload.document_id not in {p["document_id"] for p in results}:
                lost[upload.document_id] = f"{upload.filename}, not found by its sentence"
        with self.report._lock:
            self.report.documents += len(self.uploads)
            self.report.lost_documents += [f"client {self.number}: {why}" for why in lost.values()]


def run_load(api_url: str, config: LoadConfig) -> LoadReport:
    """Run ``config.clients`` clients against the API for ``config.duration_s`` seconds."""
    report = LoadReport(config)
    started = time.monotonic()
    deadline = started + config.duration_s
    clients = [Client(n, api_url, config, report) for n in range(1, config.clients + 1)]
    threads = [threading.Thread(target=c.run, args=(deadline,), daemon=True) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.wall_s = time.monotonic() - started
    return report


# --- the servers ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True, slots=True)
class Deployment:
    url: str
    api_pid: int


@contextlib.contextmanager
def local_deployment(**settings: str) -> Iterator[Deployment]:
    """`pgpt vllm` and `pgpt serve` on free loopback ports, the API with extra PGPT_ settings."""
    vllm_port, api_port = free_port(), free_port()
    env = {**os.environ, "PGPT_VLLM_URL": f"http://{LOOPBACK}:{vllm_port}"}
    env.update({f"PGPT_{name.upper()}": value for name, value in settings.items()})
    env.pop("PGPT_API_KEY", None)
    cli = [sys.executable, "-m", "serving.cli"]
    vllm_env = {k: v for k, v in env.items() if k != "PGPT_VLLM_URL"}
    servers: list[subprocess.Popen[bytes]] = []
    try:
        progress(f"starting vLLM on port {vllm_port} ...")
        servers.append(
            subprocess.Popen(
                [*cli, "vllm", "--host", LOOPBACK, "--port", str(vllm_port)],
                env=vllm_env,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
        wait_healthy(f"http://{LOOPBACK}:{vllm_port}/health", servers[-1])
        progress(f"starting the API on port {api_port} ...")
        servers.append(
            subprocess.Popen(
                [*cli, "serve", "--host", LOOPBACK, "--port", str(api_port)],
                env=env,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
        wait_healthy(f"http://{LOOPBACK}:{api_port}/healthz", servers[-1], generator=True)
        yield Deployment(f"http://{LOOPBACK}:{api_port}", servers[-1].pid)
    finally:
        for server in reversed(servers):
            with contextlib.suppress(ProcessLookupError):
                server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)


def wait_healthy(url: str, process: subprocess.Popen[bytes], *, generator: bool = False) -> None:
    """Wait for 200 from ``url`` (and, for the API, a ready generator)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited during start-up")
        with contextlib.suppress(httpx.HTTPError):
            response = httpx.get(url, timeout=5)
            if response.status_code == 200 and (
                not generator or response.json()["generator"]["status"] == "ready"
            ):
                return
        time.sleep(1.0)
    raise RuntimeError(f"nothing healthy at {url} within {START_TIMEOUT_S:.0f} s")


# --- the report -----------------------------------------------------------------------


def load_figures(report: LoadReport, *, headline: bool = False) -> list[Figure]:
    """Server errors, lost documents and search latency of one load run."""
    config = report.config
    run = f"{config.clients} clients for {config.duration_s:.0f} s"
    searches = sorted(s.seconds for s in report.samples if s.operation == "search")
    counts = {
        "server errors": len(report.server_errors),
        "lost documents": len(report.lost_documents),
    }
    figures = [
        Figure(
            "Load and soak",
            f"{run}: {name}",
            count,
            higher_is_better=False,
            headline=headline,
            digits=0,
        )
        for name, count in counts.items()
    ]
    if searches:
        figures.append(
            Figure(
                "Load and soak",
                f"{run}: search p50",
                percentile(searches, 50) * 1000,
                "ms",
                higher_is_better=False,
                digits=0,
            )
        )
    return figures


def render(report: LoadReport, machine: str, command: str) -> str:
    config = report.config
    by_operation: dict[str, list[Sample]] = defaultdict(list)
    for sample in report.samples:
        by_operation[sample.operation].append(sample)
    rows = []
    order = ["create session", *OPERATIONS, "verify", "delete session"]
    for operation in order + sorted(set(by_operation) - set(order)):
        samples = by_operation.get(operation, [])
        if not samples:
            continue
        latencies = sorted(s.seconds for s in samples)
        statuses = Counter(s.status for s in samples)
        rows.append(
            [
                operation,
                len(samples),
                ", ".join(f"{code or 'no answer'}: {n}" for code, n in sorted(statuses.items())),
                f"{percentile(latencies, 50) * 1000:,.0f}",
                f"{percentile(latencies, 95) * 1000:,.0f}",
                f"{latencies[-1] * 1000:,.0f}",
            ]
        )
    table = markdown_table(
        ["operation", "requests", "status: count", "p50 ms", "p95 ms", "max ms"], rows
    )
    weights = (
        f"upload {config.upload_weight}, search {config.search_weight}, query {config.query_weight}"
    )
    lines = [
        "## Load: concurrent clients against one server",
        "",
        f"Produced by `{command}`.",
        "",
        f"Machine: {machine}",
        "",
        f"{config.clients} clients for {config.duration_s:.0f} s, then each verifies its "
        f"documents (wall time {report.wall_s:.0f} s). One session per client; operations "
        f"picked at random with weights {weights} (seed {config.seed}). Uploads: "
        f"{1 - config.pdf_share:.0%} generated text/Markdown files with one unique sentence "
        f"(1-2 passages), {config.pdf_share:.0%} the real crazyones.pdf. Searches and "
        f"questions use top_k {config.top_k}; answers are at most {config.answer_max_tokens} "
        "tokens from the embedded vLLM CPU server "
        "(SmolLM2-135M). Latency is per request, as the client saw it.",
        "",
        table,
        "",
        f"- Server errors (5xx or no answer): {len(report.server_errors)}",
        f"- Refusals (4xx): {len(report.refusals)}",
        f"- Documents stored: {report.documents}; lost (not listed, or not found by their "
        f"unique sentence): {len(report.lost_documents)}",
        f"- Passages from another client's session: {report.foreign_passages}",
    ]
    # One line per distinct failure, with its count: a dead server fails every request alike.
    failures = Counter(
        f"{s.operation}: {s.status or 'no answer'} {s.detail}".rstrip()
        for s in report.server_errors
    )
    lines += [f"  - {count} x {failure}" for failure, count in failures.most_common()]
    lines += [f"  - lost: {document}" for document in report.lost_documents]
    if report.client_errors:
        lines.append(f"- Client errors: {'; '.join(report.client_errors)}")
    lines += [
        "",
        "Questions dominate: the embedded vLLM CPU server batches the questions in flight, "
        "so each waits for generation shared with the others; uploads and searches only "
        "wait for the embedder. `make test` runs the same load for 15 s "
        "(`tests/privacy/test_load.py`) and asserts no server error, no refusal, no lost "
        "document and no foreign passage, never timings.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description="Concurrent mixed load against the REST API.")
    parser.add_argument("--api-url", default=None, help="an API already running (else start one)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--output", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    config = LoadConfig(clients=args.clients, duration_s=args.duration, seed=args.seed)
    machine = describe_machine(threads=2)  # described after the run: load at start and end
    with contextlib.ExitStack() as stack:
        api_url = args.api_url or stack.enter_context(local_deployment()).url
        progress(f"{config.clients} clients for {config.duration_s:.0f} s against {api_url} ...")
        report = run_load(api_url, config)
    command = command_line("benchmarks.load_bench", argv)
    write_report(render(report, machine.describe(), command), args.output)
    write_results(args.output, load_figures(report), command=command, machine=machine.describe())
    failed = report.server_errors or report.lost_documents or report.foreign_passages
    return 1 if failed or report.client_errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
