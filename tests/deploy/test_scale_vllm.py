"""Two real embedded vLLM CPU replicas behind the real vllm-router, one api behind HAProxy:
a conversation's question and follow-up reach one vLLM replica, read from each replica's
own /metrics (its count of served chat completions)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from deploy.scale_demo import ScaleCluster, loopback_listen

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

MAX_SESSIONS = 16  # until both replicas served one; all 16 on one side: p = 2 / 2**16
DOCUMENT = b"Training the big Transformer model took 3.5 days on 8 P100 GPUs.\n"
QUESTIONS = ("How many GPUs were used to train the big model?", "How long did its training take?")
CHATS = re.compile(
    r'http_requests_total\{handler="/v1/chat/completions",method="POST",status="2xx"\} (\S+)'
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, settings) -> Iterator[ScaleCluster]:  # type: ignore[no-untyped-def]
    workdir: Path = tmp_path_factory.mktemp("scale-vllm")
    env = {"PGPT_FOLLOWUP_REWRITE": "keywords", "PGPT_ANSWER_MAX_TOKENS": "24"}
    built = ScaleCluster(settings, workdir, with_ui=False, env=env, listen=loopback_listen(workdir))
    built.start(pairs=1, vllm_replicas=2)
    try:
        yield built
    finally:
        built.stop()


def chat_counts(cluster: ScaleCluster) -> list[int]:
    """Chat completions each vLLM replica has served, from its Prometheus /metrics."""
    counts = []
    for replica in cluster.vllms:
        found = CHATS.search(httpx.get(f"{replica.url}/metrics").text)
        counts.append(int(float(found.group(1))) if found else 0)
    return counts


def test_each_conversation_stays_on_one_real_vllm_replica(cluster: ScaleCluster) -> None:
    per_session: list[list[int]] = []
    with httpx.Client(base_url=cluster.api_url, timeout=300.0) as client:
        while len(per_session) < MAX_SESSIONS:
            path = f"/v1/sessions/{client.post('/v1/sessions').json()['session_id']}"
            files = {"files": ("notes.txt", DOCUMENT, "text/plain")}
            client.post(f"{path}/documents", files=files).raise_for_status()
            before = chat_counts(cluster)
            for question in QUESTIONS:
                asked = {"question": question, "answer_mode": "generate"}
                client.post(f"{path}/query", json=asked).raise_for_status()
            per_session.append([a - b for a, b in zip(chat_counts(cluster), before, strict=True)])
            if all(any(d[i] for d in per_session) for i in range(len(cluster.vllms))):
                break
    print(f"\nchat completions per session on each vLLM replica: {per_session}")
    # Each session: both its questions on one replica, none on the other; both replicas used.
    assert sorted({tuple(sorted(d)) for d in per_session}) == [(0, 2)]
    assert all(any(d[i] for d in per_session) for i in range(2))
