"""Scale-out: what HAProxy adds to a request, and what moves when a replica comes or goes.

1. Added latency: ``/search`` on one session, alternately straight to its api replica and
   through HAProxy (the stick-table config of deploy/haproxy.py), same run; p50 and p99 of
   each and their difference.
2. Remap share over 3,000 sessions when the api tier grows 2 -> 3 and shrinks 3 -> 2:
   - the shipped stick table: real sessions created through the proxy, HAProxy reloaded
     with a replica more (or less), every session asked again;
   - the alternative, a consistent hash of the session id (``balance hash`` with
     ``hash-type consistent``): 3,000 random ids sent through such a config over the same
     replicas, which answer 404 with their name in ``X-PGPT-Replica``; the share of ids
     whose replica changed is the share of sessions that would stop working.

Real HAProxy, real `pgpt serve` replicas, no vLLM (neither /search nor the routing needs it).
Run it under the CPU lock:

    flock /tmp/pgpt-cpu.lock .venv/bin/python -m benchmarks.proxy_bench \
        --output docs/benchmarks/proxy.md
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from benchmarks.common import command_line, describe_machine, markdown_table, write_report
from benchmarks.results import Figure, write_results
from core.settings import load_settings
from deploy.scale_demo import LOOPBACK, ScaleCluster, free_port, loopback_listen
from serving.affinity import REPLICA_HEADER

DOCUMENT = b"Training the big Transformer model took 3.5 days on 8 P100 GPUs.\n" * 20
QUERY = {"query": "How many GPUs were used to train the big model?"}


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def added_latency(cluster: ScaleCluster, rounds: int) -> dict[str, float]:
    """p50/p99 of /search direct and through the proxy, alternating, in ms."""
    with httpx.Client(base_url=cluster.api_url, timeout=30.0) as proxied:
        created = proxied.post("/v1/sessions")
        session_id = created.json()["session_id"]
        pair = next(p for p in cluster.pairs if p.pair.name == created.headers[REPLICA_HEADER])
        path = f"/v1/sessions/{session_id}"
        files = {"files": ("notes.txt", DOCUMENT, "text/plain")}
        proxied.post(f"{path}/documents", files=files).raise_for_status()
        with httpx.Client(base_url=pair.api_url, timeout=30.0) as direct:
            timings: dict[str, list[float]] = {"direct": [], "proxy": []}
            for client in (direct, proxied) * 20:  # warm both connections up
                client.post(f"{path}/search", json=QUERY).raise_for_status()
            for _ in range(rounds):
                for name, client in (("direct", direct), ("proxy", proxied)):
                    started = time.perf_counter()
                    client.post(f"{path}/search", json=QUERY).raise_for_status()
                    timings[name].append((time.perf_counter() - started) * 1000)
    added = [p - d for d, p in zip(timings["direct"], timings["proxy"], strict=True)]
    return {
        "direct p50": percentile(timings["direct"], 50),
        "direct p99": percentile(timings["direct"], 99),
        "proxy p50": percentile(timings["proxy"], 50),
        "proxy p99": percentile(timings["proxy"], 99),
        "added p50": percentile(timings["proxy"], 50) - percentile(timings["direct"], 50),
        "added p99": percentile(timings["proxy"], 99) - percentile(timings["direct"], 99),
        "paired median added": statistics.median(added),
    }


def replica_of(client: httpx.Client, session_id: str) -> str:
    """Which replica answers for a session id ("lost" when none holds it)."""
    response = client.get(f"/v1/sessions/{session_id}/documents")
    if response.status_code != 200:
        return "lost"
    return response.headers[REPLICA_HEADER]


def stick_remap(cluster: ScaleCluster, sessions: int) -> dict[str, float]:
    """Shares of live sessions that stop working on 2 -> 3 and 3 -> 2 (stick table)."""
    with httpx.Client(base_url=cluster.api_url, timeout=30.0) as client:
        before = {}
        for _ in range(sessions):
            created = client.post("/v1/sessions")
            before[created.json()["session_id"]] = created.headers[REPLICA_HEADER]
        cluster.add_pair()
        grown = sum(replica_of(client, s) != r for s, r in before.items()) / sessions
        spread = {}
        for _ in range(sessions):
            created = client.post("/v1/sessions")
            spread[created.json()["session_id"]] = created.headers[REPLICA_HEADER]
        removed = cluster.pairs[-1].pair.name
        cluster.remove_pair(removed)
        after = {s: replica_of(client, s) for s in spread}
    lost = sum(r == removed for r in spread.values()) / sessions
    moved = sum(after[s] != r for s, r in spread.items() if r != removed) / sessions
    return {"2->3 stopped": grown, "3->2 lost with the replica": lost, "3->2 moved": moved}


def hash_config(servers: Sequence[tuple[str, str]], port: int) -> str:
    """The consistent-hash alternative: stateless, routes by a hash of the path's id."""
    lines = [
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 30s",
        "    timeout server 30s",
        "frontend api",
        f"    bind {LOOPBACK}:{port}",
        "    default_backend api",
        "backend api",
        "    balance hash path,field(4,/)",
        "    hash-type consistent",
        *(f"    server {name} {address}" for name, address in servers),
        "",
    ]
    return "\n".join(lines)


def hash_routes(servers: Sequence[tuple[str, str]], ids: Sequence[str], workdir: Path) -> list[str]:
    """The replica each id reaches through a consistent-hash HAProxy over ``servers``."""
    port = free_port()
    config = workdir / f"hash-{len(servers)}.cfg"
    config.write_text(hash_config(servers, port))
    proxy = subprocess.Popen(["haproxy", "-db", "-f", str(config)])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://{LOOPBACK}:{port}/healthz", timeout=1.0)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        with httpx.Client(base_url=f"http://{LOOPBACK}:{port}", timeout=30.0) as client:
            return [client.get(f"/v1/sessions/{i}/documents").headers[REPLICA_HEADER] for i in ids]
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)


def hash_remap(cluster: ScaleCluster, sessions: int, workdir: Path) -> dict[str, float]:
    servers = [(p.pair.name, p.pair.api) for p in cluster.pairs]
    assert len(servers) >= 3, "the hash comparison needs three api replicas"
    ids = [secrets.token_urlsafe(32) for _ in range(sessions)]
    two = hash_routes(servers[:2], ids, workdir)
    three = hash_routes(servers[:3], ids, workdir)
    grown = sum(a != b for a, b in zip(two, three, strict=True)) / sessions
    lost = sum(r == servers[2][0] for r in three) / sessions
    moved = sum(a != b for a, b in zip(three, two, strict=True) if a != servers[2][0]) / sessions
    return {"2->3 stopped": grown, "3->2 lost with the replica": lost, "3->2 moved": moved}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1000, help="/search pairs for latency")
    parser.add_argument("--sessions", type=int, default=3000)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    settings = load_settings()
    machine = describe_machine(settings.threads)
    with tempfile.TemporaryDirectory(prefix="pgpt-proxy-bench-") as tmp:
        workdir = Path(tmp)
        listen = loopback_listen(workdir)
        env = {"PGPT_MAX_SESSIONS": str(2 * args.sessions + 100), "PGPT_PARSER_WORKERS": "1"}
        cluster = ScaleCluster(settings, workdir, with_ui=False, env=env, listen=listen)
        try:
            cluster.start_pairs(3)
            hashed = hash_remap(cluster, args.sessions, workdir)
            cluster.remove_pair("api3")
            cluster.start_proxy()
            latency = added_latency(cluster, args.rounds)
            stuck = stick_remap(cluster, args.sessions)
        finally:
            cluster.stop()
    command = command_line("benchmarks.proxy_bench", sys.argv[1:] if argv is None else argv)
    report = render(latency, stuck, hashed, args, machine.describe(), command)
    write_report(report, args.output)
    write_results(args.output, figures(latency, stuck), command=command, machine=machine.describe())


def figures(latency: dict[str, float], stuck: dict[str, float]) -> list[Figure]:
    return [
        Figure(
            "Scale-out",
            "/search through HAProxy, p50",
            latency["proxy p50"],
            "ms",
            baseline="one replica directly",
            baseline_value=latency["direct p50"],
            higher_is_better=False,
            digits=2,
        ),
        Figure(
            "Scale-out",
            "live sessions broken by adding a replica (2 -> 3, stick table)",
            stuck["2->3 stopped"],
            higher_is_better=False,
        ),
    ]


def render(
    latency: dict[str, float],
    stuck: dict[str, float],
    hashed: dict[str, float],
    args: argparse.Namespace,
    machine: str,
    command: str,
) -> str:
    rows = [[name, f"{value:.2f}"] for name, value in latency.items()]
    remap = [
        [name, f"{stuck[name]:.1%}", f"{hashed[name]:.1%}"]
        for name in ("2->3 stopped", "3->2 lost with the replica", "3->2 moved")
    ]
    return "\n\n".join(
        [
            "## Scale-out: HAProxy's added latency and the remap share "
            "(`benchmarks/proxy_bench.py`)",
            f"Command: `{command}`. Machine: {machine}",
            f"### `/search` on one session, {args.rounds} alternating pairs (ms)",
            markdown_table(["figure", "ms"], rows),
            f"### Share of {args.sessions:,} live sessions that stop working",
            markdown_table(["change", "stick table (shipped)", "consistent hash"], remap),
            '"Lost with the replica": the sessions the removed replica held (their documents '
            'were in its memory; no routing saves them). "Moved": sessions of the remaining '
            "replicas sent elsewhere, which answers that it does not know them.",
        ]
    )


if __name__ == "__main__":
    main()
