"""Soak: many clients for minutes, sessions deleted and left to expire, memory watched.

Two phases against one real deployment (`pgpt vllm` + `pgpt serve`, sessions expiring
after --ttl seconds of idleness):

1. Session churn: --sessions sessions, each created with one generated document, then
   left to expire. The API's RSS before, at its peak and after they have expired.
2. Soak: --clients clients for --duration seconds mixing uploads, searches, questions,
   document deletes and abandoned sessions (left to expire, a new one started), then
   each verifies its documents as in benchmarks/load_bench.py. Reported: status counts
   and p50/p95 per route, lost documents, foreign passages, the API's RSS at start,
   peak and end (after every session is gone). With ``--rounds N`` the soak runs N times
   against the same API: RSS that levels off from round to round is bounded, one that
   climbs by a similar step each round is a leak.

    .venv/bin/python -m benchmarks.soak_bench --output docs/benchmarks/soak.md
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from benchmarks.common import command_line, describe_machine, progress, write_report
from benchmarks.load_bench import (
    Client,
    LoadConfig,
    LoadReport,
    generated_document,
    load_figures,
    local_deployment,
    render,
)
from benchmarks.results import Figure, write_results

EVICTION_WAIT_S = 45.0  # the API evicts expired sessions every 30 s
MIB = 1024 * 1024


class MemoryWatch:
    """Samples a process's RSS every second in a thread: first, peak and last."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self.first = self.peak = self.last = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(1.0):
            with contextlib.suppress(psutil.Error):
                self.last = self._process.memory_info().rss
                self.peak = max(self.peak, self.last)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.last = self._process.memory_info().rss
        self.peak = max(self.peak, self.last)


@dataclass
class ChurnResult:
    sessions: int
    refused: int
    before: int
    peak: int
    after: int
    left: int  # sessions the API still held after expiry


@dataclass
class SoakExtras:
    deleted: int = 0
    abandoned_sessions: int = 0
    delete_failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class SoakClient(Client):
    """A load client that also deletes documents and abandons sessions to expiry."""

    extras: SoakExtras

    def mix(self) -> tuple[list[str], list[float]]:
        operations, weights = super().mix()
        return [*operations, "delete", "abandon"], [*weights, 0.05, 0.02]

    def delete(self) -> None:
        if not self.uploads:
            return
        document_id = self.rng.choice(sorted(self.uploads))
        response = self.request("delete", "DELETE", f"{self.base}/documents/{document_id}")
        with self.extras.lock:
            if response is not None and response.status_code == 204:
                del self.uploads[document_id]
                self.extras.deleted += 1
            else:
                self.extras.delete_failures.append(f"client {self.number}: {document_id}")

    def abandon(self) -> None:
        with self.extras.lock:
            self.extras.abandoned_sessions += 1
        if self.new_session():
            self.upload()


def sessions_held(api_url: str) -> int:
    return int(httpx.get(f"{api_url}/healthz", timeout=60).json()["sessions"])


def churn(api_url: str, api_pid: int, sessions: int, ttl_s: float, seed: int) -> ChurnResult:
    rng = random.Random(seed)
    watch = MemoryWatch(api_pid)
    refused = 0
    with httpx.Client(base_url=api_url, timeout=600) as http:
        for number in range(1, sessions + 1):
            sid = http.post("/v1/sessions").json()["session_id"]
            filename, data, _ = generated_document(rng, 0, number)
            uploaded = http.post(
                f"/v1/sessions/{sid}/documents", files=[("files", (filename, data, "text/plain"))]
            )
            refused += uploaded.status_code != 200
            if number % 100 == 0:
                progress(f"  {number} sessions created")
    time.sleep(ttl_s + EVICTION_WAIT_S)
    left = sessions_held(api_url)
    watch.stop()
    return ChurnResult(sessions, refused, watch.first, watch.peak, watch.last, left)


def soak(
    api_url: str, api_pid: int, config: LoadConfig, ttl_s: float
) -> tuple[LoadReport, SoakExtras, MemoryWatch, int]:
    report = LoadReport(config)
    extras = SoakExtras()
    watch = MemoryWatch(api_pid)
    started = time.monotonic()
    deadline = started + config.duration_s
    clients = [SoakClient(n, api_url, config, report) for n in range(1, config.clients + 1)]
    for client in clients:
        client.extras = extras
    threads = [threading.Thread(target=c.run, args=(deadline,), daemon=True) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report.wall_s = time.monotonic() - started
    time.sleep(ttl_s + EVICTION_WAIT_S)  # abandoned sessions expire
    left = sessions_held(api_url)
    watch.stop()
    return report, extras, watch, left


def mib(value: int) -> str:
    return f"{value / MIB:,.0f} MiB"


@dataclass
class Round:
    report: LoadReport
    extras: SoakExtras
    watch: MemoryWatch
    left: int  # sessions the API still held after expiry

    @property
    def failed(self) -> bool:
        report = self.report
        return bool(
            report.server_errors
            or report.lost_documents
            or report.foreign_passages
            or report.client_errors
            or self.extras.delete_failures
        )


def render_soak(result: ChurnResult, rounds: Sequence[Round], machine: str, command: str) -> str:
    report, extras, watch, left = (
        rounds[0].report,
        rounds[0].extras,
        rounds[0].watch,
        rounds[0].left,
    )
    load = render(report, machine, command).splitlines()
    # The load report's table and counts, under this report's own heading.
    body = load[load.index("") + 1 :]
    lines = [
        "## Soak: sessions churned and expired, many clients for minutes",
        "",
        *body,
        f"- Documents deleted by clients: {extras.deleted} "
        f"(failed deletes: {len(extras.delete_failures)}); sessions abandoned to expire: "
        f"{extras.abandoned_sessions}; sessions still held after expiry: {left}",
        f"- API RSS: start {mib(watch.first)}, peak {mib(watch.peak)}, "
        f"end {mib(watch.last)} (after every session ended or expired)",
        "",
        f"Session churn before the soak: {result.sessions} sessions, each with one generated "
        f"document ({result.refused} uploads refused), left to expire: API RSS before "
        f"{mib(result.before)}, peak {mib(result.peak)}, after expiry {mib(result.after)} "
        f"(+{(result.after - result.before) / MIB:,.0f} MiB); sessions left: {result.left}.",
    ]
    if len(rounds) > 1:
        lines += [
            "",
            f"The same soak {len(rounds)} times in a row against the same API (the table above "
            "is round 1); API RSS after each round, once every session had ended or expired:",
            "",
            "| round | server errors | lost documents | foreign passages | RSS start | "
            "RSS peak | RSS end | end minus round 1's end |",
            "|---|---|---|---|---|---|---|---|",
        ]
        first_end = rounds[0].watch.last
        for number, done in enumerate(rounds, start=1):
            r, w = done.report, done.watch
            lines.append(
                f"| {number} | {len(r.server_errors)} | {len(r.lost_documents)} | "
                f"{r.foreign_passages} | "
                f"{mib(w.first)} | {mib(w.peak)} | {mib(w.last)} | "
                f"{(w.last - first_end) / MIB:+,.0f} MiB |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load")
    parser.add_argument("--sessions", type=int, default=1000, help="sessions in the churn phase")
    parser.add_argument(
        "--ttl", type=float, default=240.0, help="session idle timeout, seconds (above p95 query)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=1, help="soak this many times in a row")
    parser.add_argument("--output", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)
    config = LoadConfig(clients=args.clients, duration_s=args.duration, seed=args.seed)
    settings = {"session_ttl_s": str(int(args.ttl)), "max_sessions": str(args.sessions + 100)}
    with local_deployment(**settings) as deployment:
        progress(f"churn: {args.sessions} sessions with one document each ...")
        result = churn(deployment.url, deployment.api_pid, args.sessions, args.ttl, args.seed)
        rounds = []
        for number in range(1, args.rounds + 1):
            progress(
                f"soak round {number}/{args.rounds}: {config.clients} clients "
                f"for {config.duration_s:.0f} s ..."
            )
            rounds.append(Round(*soak(deployment.url, deployment.api_pid, config, args.ttl)))
    machine = describe_machine(threads=2)
    command = command_line("benchmarks.soak_bench", argv)
    write_report(render_soak(result, rounds, machine.describe(), command), args.output)
    figures = load_figures(rounds[-1].report, headline=True)
    if len(rounds) > 1:
        growth = (rounds[-1].watch.last - rounds[0].watch.last) / MIB
        figures.append(
            Figure(
                "Load and soak",
                f"RSS growth, round {len(rounds)} vs round 1",
                growth,
                "MiB",
                higher_is_better=False,
                headline=True,
                digits=0,
            )
        )
    write_results(args.output, figures, command=command, machine=machine.describe())
    return 1 if any(done.failed for done in rounds) else 0


if __name__ == "__main__":
    raise SystemExit(main())
