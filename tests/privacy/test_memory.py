"""A deleted session or document gives its memory back; nothing keeps a parsed document
or a conversation alive.

The RSS test runs the real API (`pgpt serve`) as a subprocess and reads its resident
memory with psutil. Bound: after a warm-up cycle (so one-off growth such as model
caches and the allocator's first arenas is in the baseline), each cycle uploads four
12 MB PDFs (48 MB) into a session, renders a page of each (the page view keeps the
original bytes, so the session must hold at least those 48 MB), then deletes the
session, or each document; the page route must then answer 404 and RSS must come back
to within 16 MB of the baseline. A session whose documents stayed in memory would leave
at least 48 MB per cycle; 16 MB is room for allocator slack (glibc keeps some freed
memory at the top of thread arenas, which malloc_trim does not return). Measured on two
busy cores before the page view: the cycle added 11-91 MB while the session lived, and
left between -16 and +4 MB once it was deleted. No timings are asserted.
"""

from __future__ import annotations

import gc
import secrets
import sys
import time
import warnings
from collections.abc import Iterator
from types import FrameType
from typing import Any

import httpx
import psutil
import pytest
from fastapi.testclient import TestClient

from core.settings import load_settings
from ingest.loader import load_document
from rag.conversation import Turn
from serving.app import create_app
from tests.plugins.vllm_server import VLLMServerHandle
from tests.privacy.documents import text_pdf
from tests.privacy.servers import Sandbox, Server, start_api
from tests.support import LOOPBACK, free_port

DOCUMENTS_PER_SESSION = 4
PADDING_BYTES = 12 * 1024 * 1024
RSS_SLACK_BYTES = 16 * 1024 * 1024
RSS_STEADY_BYTES = 256 * 1024  # two readings 0.1 s apart this close: settled
LINES = [
    "The quarterly ledger lists every harbour fee, mooring charge and pilot's wage.",
    "Copper lanterns were replaced by electric signals along the northern breakwater.",
]


def big_pdf() -> bytes:
    """Two pages of text and 12 MB of incompressible padding (not text: cheap to embed)."""
    return text_pdf([LINES, LINES[::-1]], padding=secrets.token_bytes(PADDING_BYTES))


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    sandbox = Sandbox.create(tmp_path_factory.mktemp("memory-sandbox"))
    port = free_port()
    # No vLLM: uploads and search need none (an unreachable generator is reported, not fatal).
    server = start_api(
        sandbox, port, generator_ready=False, vllm_url=f"http://{LOOPBACK}:{free_port()}"
    )
    try:
        yield server, f"http://{LOOPBACK}:{port}"
    finally:
        server.stop()


@pytest.mark.slow  # a `pgpt serve` subprocess and 4 x 12 MB PDF cycles
@pytest.mark.parametrize("delete", ["session", "documents"])
def test_deleting_a_session_or_its_documents_gives_the_memory_back(
    api_server: tuple[Server, str], delete: str
) -> None:
    server, url = api_server
    process = psutil.Process(server.pid)

    def rss() -> int:
        """Resident memory once it stops moving (the response's buffers take a moment to go)."""
        deadline = time.monotonic() + 30
        previous, value = -1, int(process.memory_info().rss)
        while abs(value - previous) > RSS_STEADY_BYTES and time.monotonic() < deadline:
            time.sleep(0.1)
            previous, value = value, int(process.memory_info().rss)
        return value

    with httpx.Client(base_url=url, timeout=600) as client:

        def cycle() -> tuple[int, int]:
            sid = client.post("/v1/sessions").json()["session_id"]
            for n in range(DOCUMENTS_PER_SESSION):
                response = client.post(
                    f"/v1/sessions/{sid}/documents",
                    files=[("files", (f"ledger-{n}.pdf", big_pdf(), "application/pdf"))],
                )
                assert response.status_code == 200, response.text
            listed = client.get(f"/v1/sessions/{sid}/documents").json()["documents"]
            assert len(listed) == DOCUMENTS_PER_SESSION
            assert all(d["size_bytes"] > PADDING_BYTES for d in listed)
            found = client.post(f"/v1/sessions/{sid}/search", json={"query": "harbour fees"})
            assert found.json()["results"]
            pages = [f"/v1/sessions/{sid}/documents/{d['document_id']}/pages/1" for d in listed]
            for page in pages:
                shown = client.get(page, params={"start": 4, "end": 20})
                assert shown.status_code == 200 and shown.headers["content-type"] == "image/png"
            loaded = rss()
            if delete == "session":
                assert client.delete(f"/v1/sessions/{sid}").status_code == 204
            else:
                for d in listed:
                    gone = client.delete(f"/v1/sessions/{sid}/documents/{d['document_id']}")
                    assert gone.status_code == 204
            assert [client.get(page).status_code for page in pages] == [404] * len(pages)
            after = rss()
            client.delete(f"/v1/sessions/{sid}")
            return loaded, after

        cycle()  # warm-up
        baseline = rss()
        for _ in range(2):
            loaded, after = cycle()
            print(f"RSS MB: baseline {baseline >> 20}, loaded {loaded >> 20}, after {after >> 20}")
            assert loaded - baseline >= DOCUMENTS_PER_SESSION * PADDING_BYTES, (
                "the session should hold the uploaded files"
            )
            assert after - baseline <= RSS_SLACK_BYTES, (
                f"{(after - baseline) >> 20} MB stayed after the {delete} was deleted"
            )
    assert server.is_running()


def test_the_parser_pool_keeps_no_reference_to_a_document() -> None:
    """A document's bytes pass through a process pool; once parsed, nothing here may still
    hold them (the pool's queue thread used to, until the next upload)."""
    size = 3 * 1024 * 1024
    data = text_pdf([LINES], padding=secrets.token_bytes(size))
    load_document(data, "ledger.pdf", max_bytes=len(data), max_pages=10, timeout_s=60)
    del data
    gc.collect()
    held = [
        f"{type(value).__name__} {len(value)} bytes in {frame.f_code.co_name}()"
        for top in sys._current_frames().values()
        for frame in walk(top)
        for value in frame.f_locals.values()
        if isinstance(value, bytes | bytearray | memoryview) and len(value) >= size
    ]
    with warnings.catch_warnings():  # touching every object wakes deprecated lazy attributes
        warnings.simplefilter("ignore")
        held += [
            f"{type(value).__name__} {len(value)} bytes in a {type(owner).__name__}"
            for owner in gc.get_objects()
            for value in gc.get_referents(owner)
            if isinstance(value, bytes | bytearray | memoryview) and len(value) >= size
        ]
    assert held == []


def live_turn_ids() -> set[int]:
    gc.collect()
    return {id(o) for o in gc.get_objects() if isinstance(o, Turn)}


def live_turn_questions(ignore: set[int]) -> list[str]:
    """The question of every Turn alive in this process but those in `ignore` (holding none)."""
    gc.collect()
    turns = [o for o in gc.get_objects() if isinstance(o, Turn) and id(o) not in ignore]
    return sorted(turn.question for turn in turns)


def test_conversation_turns_are_capped_and_freed_with_the_conversation_or_session(
    embedder: Any, vllm_server: VLLMServerHandle, attention_pdf: bytes
) -> None:
    """Real answers from the embedded vLLM; every Turn object alive in the process counted."""
    settings = load_settings(
        vllm_url=vllm_server.url, answer_max_tokens=32, temperature=0.0, conversation_max_turns=2
    )
    generator = vllm_server.make_generator(timeout_s=120, retries=1)
    questions = ["How many P100 GPUs were used?", "What is the BLEU score?", "Who wrote it?"]
    # Other test modules keep Turn constants (e.g. a follow-up history) alive for the whole run.
    before = live_turn_ids()
    with TestClient(create_app(settings, embedder=embedder, generator=generator)) as client:
        sid = client.post("/v1/sessions").json()["session_id"]
        files = [("files", ("attention.pdf", attention_pdf, "application/pdf"))]
        assert client.post(f"/v1/sessions/{sid}/documents", files=files).status_code == 200

        def ask(question: str) -> None:
            response = client.post(f"/v1/sessions/{sid}/query", json={"question": question})
            assert response.status_code == 200, response.text

        for question in questions:
            ask(question)
        # Past the cap of two turns the oldest went.
        assert live_turn_questions(before) == sorted(questions[1:])
        assert client.delete(f"/v1/sessions/{sid}/conversation").status_code == 204
        assert live_turn_questions(before) == []
        assert client.get(f"/v1/sessions/{sid}/documents").json()["documents"]  # kept
        ask(questions[0])
        assert live_turn_questions(before) == [questions[0]]
        assert client.delete(f"/v1/sessions/{sid}").status_code == 204
        assert live_turn_questions(before) == []


def walk(frame: FrameType | None) -> list[FrameType]:
    frames = []
    while frame is not None:
        frames.append(frame)
        frame = frame.f_back
    return frames
