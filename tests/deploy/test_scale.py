"""Scale-out for real: HAProxy over api replicas, vllm-router over vLLM replicas.

One cluster per module (deploy/scale_demo.py's ScaleCluster): real HAProxy, real
vllm-router (consistent hash on X-Session-ID), real `pgpt serve` api replicas, and fake
vLLM replicas (serving/fakes.py) that count chat requests per session hash.
200 sessions each get a document, a question and a follow-up through the proxy.

The tests run in file order: the later ones change the cluster (a replica added, an api
replica and a vLLM replica killed), after the ones that read it as it was built.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from core.api_models import ErrorBody
from deploy.scale_demo import ScaleCluster, loopback_listen
from serving import fakes

pytestmark = pytest.mark.slow  # subprocess servers: HAProxy, vllm-router, api replicas

SESSIONS = 200
CONCURRENCY = 8
MAX_SHARE = 0.65
FAILOVER_LIMIT_S = 30.0
REPLICA_HEADER = "X-PGPT-Replica"
DOCUMENT = (
    b"Training the big Transformer model took 3.5 days on 8 P100 GPUs.\n"
    b"The base models were trained for 12 hours.\n"
)
QUESTION = "How many GPUs were used to train the big model?"
FOLLOW_UP = "How long did its training take?"


@dataclass
class Trace:
    """One session as the client saw it: where it was created, who answered each request."""

    session_id: str
    created_on: str
    answered_by: list[str]
    failures: list[str]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, settings) -> Iterator[ScaleCluster]:  # type: ignore[no-untyped-def]
    workdir: Path = tmp_path_factory.mktemp("scale")
    listen = loopback_listen(workdir)
    env = {
        "PGPT_FOLLOWUP_REWRITE": "keywords",
        "PGPT_PARSER_WORKERS": "1",
        "PGPT_MAX_SESSIONS": "1000",
    }
    built = ScaleCluster(
        settings, workdir, vllm_command=fakes.vllm_command, with_ui=False, env=env, listen=listen
    )
    built.start(pairs=2, vllm_replicas=2)
    try:
        yield built
    finally:
        built.stop()


async def run_session(client: httpx.AsyncClient, limit: asyncio.Semaphore) -> Trace:
    async with limit:
        created = await client.post("/v1/sessions")
        created.raise_for_status()
        trace = Trace(created.json()["session_id"], created.headers[REPLICA_HEADER], [], [])
        base = f"/v1/sessions/{trace.session_id}"
        files = {"files": ("notes.txt", DOCUMENT, "text/plain")}
        requests = [
            client.build_request("POST", f"{base}/documents", files=files),
            client.build_request("POST", f"{base}/query", json=ask(QUESTION)),
            client.build_request("POST", f"{base}/query", json=ask(FOLLOW_UP)),
        ]
        for request in requests:
            response = await client.send(request)
            trace.answered_by.append(response.headers.get(REPLICA_HEADER, "none"))
            if response.status_code != 200:
                trace.failures.append(f"{request.url.path}: {response.status_code} {response.text}")
        return trace


def ask(question: str) -> dict[str, object]:
    return {"question": question, "answer_mode": "generate"}


async def run_sessions(url: str, count: int) -> list[Trace]:
    limit = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, timeout=60.0) as client:
        return list(await asyncio.gather(*(run_session(client, limit) for _ in range(count))))


@pytest.fixture(scope="module")
def traces(cluster: ScaleCluster) -> list[Trace]:
    started = time.monotonic()
    done = asyncio.run(run_sessions(cluster.api_url, SESSIONS))
    print(f"\n{SESSIONS} sessions through HAProxy in {time.monotonic() - started:.1f} s")
    return done


def session_works(client: httpx.Client, session_id: str) -> httpx.Response:
    """A request that needs the session's documents: its document list."""
    return client.get(f"/v1/sessions/{session_id}/documents")


def vllm_counts(cluster: ScaleCluster) -> dict[str, Counter[str]]:
    """Chat requests per session hash, for each running vLLM replica."""
    return {
        replica.url: fakes.parse_metrics(httpx.get(f"{replica.url}/metrics").text)
        for replica in cluster.vllms
        if replica.is_running()
    }


# --- sessions pinned ---------------------------------------------------------------


def test_every_request_of_a_session_reaches_the_replica_that_created_it(
    traces: list[Trace],
) -> None:
    strays = [t for t in traces if any(r != t.created_on for r in t.answered_by) or t.failures]
    assert strays == []


def test_sessions_spread_over_both_replicas(traces: list[Trace]) -> None:
    shares = Counter(t.created_on for t in traces)
    print(f"\nsessions per replica: {dict(shares)}")
    assert len(shares) == 2 and max(shares.values()) <= MAX_SHARE * SESSIONS


def test_unknown_session_is_answered_by_the_proxy_in_the_api_error_shape(
    cluster: ScaleCluster,
) -> None:
    response = httpx.get(f"{cluster.api_url}/v1/sessions/{'x' * 43}/documents")
    error = ErrorBody.model_validate(response.json()).error
    assert (response.status_code, error.code, error.type) == (
        404,
        "session_not_found",
        "not_found_error",
    )


# --- vLLM tier ---------------------------------------------------------------------


def test_follow_ups_of_a_session_go_to_one_vllm_replica(
    cluster: ScaleCluster, traces: list[Trace]
) -> None:
    counts = vllm_counts(cluster)
    replicas_of: dict[str, set[str]] = {}
    for url, per_session in counts.items():
        for key in per_session:
            replicas_of.setdefault(key, set()).add(url)
    # One key per session (its question and follow-up), each on one replica, both used.
    spread = Counter(next(iter(urls)) for urls in replicas_of.values() if len(urls) == 1)
    print(f"\nsessions per vLLM replica: {dict(spread)}")
    assert (len(replicas_of), sum(spread.values()), len(spread)) == (SESSIONS, SESSIONS, 2)


def test_vllm_tier_never_sees_a_session_id(cluster: ScaleCluster, traces: list[Trace]) -> None:
    keys = {key for per_session in vllm_counts(cluster).values() for key in per_session}
    assert keys.isdisjoint(t.session_id for t in traces) and "" not in keys


# --- scaling the api tier -------------------------------------------------------------


def test_adding_a_replica_keeps_every_live_session(
    cluster: ScaleCluster, traces: list[Trace]
) -> None:
    cluster.add_pair()
    with httpx.Client(base_url=cluster.api_url, timeout=30.0) as client:
        broken = [t for t in traces if session_works(client, t.session_id).status_code != 200]
        new_sessions = Counter(
            client.post("/v1/sessions").headers[REPLICA_HEADER] for _ in range(30)
        )
    print(
        f"\nreplica added (2 -> 3): {len(broken)} of {len(traces)} live sessions stopped "
        f"working ({len(broken) / len(traces):.1%}); new sessions: {dict(new_sessions)}"
    )
    assert (len(broken), len(new_sessions)) == (0, 3)


def test_a_draining_replica_gets_no_new_session_and_keeps_serving_its_own(
    cluster: ScaleCluster, traces: list[Trace]
) -> None:
    with httpx.Client(base_url=cluster.api_url, timeout=30.0) as client:
        before = [client.post("/v1/sessions") for _ in range(6)]
        on_api3 = [r.json()["session_id"] for r in before if r.headers[REPLICA_HEADER] == "api3"]
        cluster.proxy_command("set server api/api3 state drain")
        after = Counter(client.post("/v1/sessions").headers[REPLICA_HEADER] for _ in range(20))
        still = Counter(session_works(client, s).headers[REPLICA_HEADER] for s in on_api3)
    assert (sorted(after), len(on_api3) > 0, still) == (
        ["api1", "api2"],
        True,
        Counter({"api3": len(on_api3)}),
    )


def test_killed_replica_sessions_get_a_clear_error_and_the_others_keep_working(
    cluster: ScaleCluster, traces: list[Trace]
) -> None:
    cluster.kill_api("api1")
    outcomes: Counter[tuple[str, int, str]] = Counter()
    with httpx.Client(base_url=cluster.api_url, timeout=30.0) as client:
        for trace in traces:
            response = session_works(client, trace.session_id)
            code = response.json()["error"]["code"] if response.status_code != 200 else "ok"
            outcomes[(trace.created_on, response.status_code, code)] += 1
    on_api1 = sum(1 for t in traces if t.created_on == "api1")
    assert outcomes == Counter(
        {
            ("api1", 503, "session_unavailable"): on_api1,
            ("api2", 200, "ok"): len(traces) - on_api1,
        }
    )


def test_killed_replica_error_says_the_session_is_gone_and_to_upload_again(
    cluster: ScaleCluster, traces: list[Trace]
) -> None:
    lost = next(t for t in traces if t.created_on == "api1")
    url = f"{cluster.api_url}/v1/sessions/{lost.session_id}/query"
    response = httpx.post(url, json=ask(QUESTION))
    error = ErrorBody.model_validate(response.json()).error
    assert (response.status_code, error.type) == (503, "service_unavailable_error")
    assert "documents are gone" in error.message and "upload" in error.message


def test_answers_continue_through_the_other_vllm_replica_within_30_s(
    cluster: ScaleCluster, traces: list[Trace]
) -> None:
    survivor = next(t for t in traces if t.created_on == "api2")
    url = f"{cluster.api_url}/v1/sessions/{survivor.session_id}/query"
    before = vllm_counts(cluster)
    assert httpx.post(url, json=ask(QUESTION), timeout=30.0).status_code == 200
    after = vllm_counts(cluster)
    owner = next(r for r in cluster.vllms if after[r.url].total() > before[r.url].total())
    owner.kill()
    started = time.monotonic()
    answered_in: float | None = None
    while answered_in is None and time.monotonic() - started < FAILOVER_LIMIT_S:
        if httpx.post(url, json=ask(FOLLOW_UP), timeout=30.0).status_code == 200:
            answered_in = time.monotonic() - started
        else:
            time.sleep(0.5)
    health = httpx.get(f"{cluster.api_url}/healthz").json()["generator"]["status"]
    print(f"\nits vLLM replica killed: answered again after {answered_in} s; /healthz: {health}")
    assert answered_in is not None and health == "ready"
