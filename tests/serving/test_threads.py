"""An upload keeps no more threads of the API process runnable than PGPT_THREADS allows.

Threads that spin while they wait (OpenMP, ONNX Runtime, TBB) or pools sized to the
machine instead of the setting show as extra runnable threads (state R in
/proc/self/task/*/stat) while a document is embedded: on two cores, a third runnable
thread slowed the torch upload 15-fold (issue 36). The test process is the API process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from core.settings import load_settings
from rag.embedding import make_embedder
from rag.fakes import ScriptedGenerator
from serving.app import create_app

THREADS = 2
# A thread woken for a moment (the event loop answering, a lock handed over) may show
# as a third runnable one in a sample; a thread pool too large or spinning shows in most.
MAX_SHARE_OVER = 0.10


def runnable_threads(skip: int) -> int:
    """Threads of this process in state R (running or waiting for a core), ``skip`` aside."""
    count = 0
    for name in os.listdir("/proc/self/task"):
        if int(name) == skip:
            continue
        try:
            with open(f"/proc/self/task/{name}/stat", encoding="ascii") as stat:
                fields = stat.read()
        except OSError:  # the thread ended between listing and reading
            continue
        count += fields[fields.rindex(")") + 2] == "R"
    return count


def sample_while(action: Callable[[], None]) -> list[int]:
    """Runnable-thread counts sampled in a thread of its own for as long as ``action`` runs."""
    samples: list[int] = []
    done = threading.Event()

    def sample() -> None:
        me = threading.get_native_id()
        while not done.is_set():
            samples.append(runnable_threads(skip=me))
            done.wait(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        action()
    finally:
        done.set()
        sampler.join()
    return samples


def share_over(samples: list[int], threads: int) -> float:
    return sum(count > threads for count in samples) / len(samples)


def upload_samples(backend: str, attention_pdf: bytes, *, embedder_threads: int) -> list[int]:
    settings = load_settings(embedding_backend=backend, threads=THREADS)
    embedder = make_embedder(settings.model_copy(update={"threads": embedder_threads}))
    app = create_app(settings, embedder=embedder, generator=ScriptedGenerator())
    with TestClient(app) as client:
        session_id = client.post("/v1/sessions").json()["session_id"]

        def upload() -> None:
            response = client.post(
                f"/v1/sessions/{session_id}/documents",
                files=[("files", ("attention.pdf", attention_pdf, "application/pdf"))],
            )
            assert response.status_code == 200, response.text

        upload()  # first-call costs (kernels, worker start) out of the sampled one
        return sample_while(upload)


@pytest.mark.embedder
@pytest.mark.parametrize("backend", ["openvino-int8", "onnx-int8", "torch"])
def test_an_upload_keeps_at_most_pgpt_threads_runnable(backend: str, attention_pdf: bytes) -> None:
    samples = upload_samples(backend, attention_pdf, embedder_threads=THREADS)
    assert share_over(samples, THREADS) < MAX_SHARE_OVER, sorted(samples)


@pytest.mark.embedder
def test_the_check_sees_an_embedder_with_more_threads_than_pgpt_threads(
    attention_pdf: bytes,
) -> None:
    samples = upload_samples("onnx-int8", attention_pdf, embedder_threads=2 * THREADS)
    assert share_over(samples, THREADS) > MAX_SHARE_OVER, sorted(samples)
