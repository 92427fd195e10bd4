"""`pgpt up` (what `make run` runs) end to end: everything starts, answers, survives a vLLM
crash, and stops on Ctrl-C.

One test, its own embedded vLLM (it cannot share the session's: `pgpt up` starts and
owns one). It runs in a sandbox of fresh folders (HOME, TMPDIR, XDG, working
directory) on free ports, waits for the API (generator ready) and the UI, asks one
question through the API, kills vLLM mid-answer and sees it come back, records the whole
process tree, sends SIGINT to the process group as a terminal's Ctrl-C does, and checks
that no process survives.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.privacy.servers import (
    API_START_TIMEOUT_S,
    VLLM_START_TIMEOUT_S,
    Sandbox,
    Server,
    wait_until,
)
from tests.support import LOOPBACK, free_port

PGPT = str(Path(sys.executable).with_name("pgpt"))  # the console script `make run` calls
STOP_TIMEOUT_S = 120
ERROR_EVENT_TIMEOUT_S = 10
# From the crash to a ready model again, as the issue asks: a backoff of a second and a vLLM
# start, 55 s measured on this 2-core machine during `make test`.
RECOVERY_TIMEOUT_S = 90
LONG_QUESTION = "Write a long, detailed essay about the crazy ones, the misfits and the rebels."


def vllm_server_process(up: Server) -> psutil.Process:
    """The vLLM API server `pgpt up` started (the leader of its process group)."""
    for process in up.family():
        if "vllm.entrypoints" in " ".join(process.cmdline()) and process.pid == os.getpgid(
            process.pid
        ):
            return process
    raise AssertionError("no vLLM server process under pgpt up")


def survive_a_vllm_crash(client: httpx.Client, sid: str, up: Server) -> None:
    """SIGKILL vLLM mid-stream: the stream ends with an error event, search goes on, questions
    get 503 with passages, and pgpt up brings the model back with the session intact."""
    vllm = vllm_server_process(up)
    events: list[str] = []
    with client.stream(
        "POST",
        f"/v1/sessions/{sid}/query",
        # generate: `auto` could answer with quotes without the model.
        json={
            "question": LONG_QUESTION,
            "stream": True,
            "max_tokens": 512,
            "answer_mode": "generate",
        },
    ) as response:
        lines = response.iter_lines()
        for line in lines:
            if line.startswith("event: "):
                events.append(line.removeprefix("event: "))
                if events[-1] == "token" and events.count("token") == 1:
                    vllm.kill()  # as a crash or the kernel's OOM killer would
                    crashed = time.monotonic()
                if events[-1] in {"done", "error"}:
                    break
    assert (events[-1], time.monotonic() - crashed < ERROR_EVENT_TIMEOUT_S) == ("error", True)

    wait_until(
        lambda: client.get("/healthz").json()["generator"]["status"] == "restarting",
        up,
        "/healthz saying restarting",
        ERROR_EVENT_TIMEOUT_S,
    )
    search = client.post(f"/v1/sessions/{sid}/search", json={"query": "crazy ones"})
    assert (search.status_code, search.json()["results"][0]["filename"]) == (200, "crazyones.pdf")
    asked = {"question": "Who are they?", "answer_mode": "generate"}
    question = client.post(f"/v1/sessions/{sid}/query", json=asked)
    assert (question.status_code, len(question.json()["sources"]) > 0) == (503, True)

    wait_until(
        lambda: client.get("/healthz").json()["generator"]["status"] == "ready",
        up,
        "the restarted model",
        RECOVERY_TIMEOUT_S - (time.monotonic() - crashed),
    )
    print(f"model ready again {time.monotonic() - crashed:.0f} s after the crash")  # for docs
    documents = client.get(f"/v1/sessions/{sid}/documents").json()["documents"]
    assert [d["filename"] for d in documents] == ["crazyones.pdf"]
    again = client.post(
        f"/v1/sessions/{sid}/query", json={"question": "Who are the crazy ones?", "max_tokens": 32}
    )
    assert again.status_code == 200, again.text


def alive(process: psutil.Process, started: float) -> bool:
    """Still the same process (not a reused pid) and not a zombie."""
    try:
        same: bool = process.create_time() == started
        return same and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.vllm
def test_pgpt_up_starts_answers_and_stops_cleanly_on_ctrl_c(
    tmp_path_factory: pytest.TempPathFactory, pdf_dir: Path
) -> None:
    sandbox = Sandbox.create(tmp_path_factory.mktemp("pgpt-up"))
    api_port, ui_port, vllm_port = free_port(), free_port(), free_port()
    env = sandbox.environment(
        api_host=LOOPBACK, api_port=str(api_port), ui_port=str(ui_port), vllm_port=str(vllm_port)
    )
    up = Server("pgpt up", [PGPT, "up"], env, sandbox.workdir)
    api = f"http://{LOOPBACK}:{api_port}"
    try:
        wait_until(
            lambda: (
                httpx.get(f"{api}/healthz", timeout=10).json()["generator"]["status"] == "ready"
            ),
            up,
            "API with a ready generator",
            VLLM_START_TIMEOUT_S + API_START_TIMEOUT_S,
        )
        wait_until(
            lambda: httpx.get(f"http://{LOOPBACK}:{ui_port}/_stcore/health", timeout=10).is_success,
            up,
            "healthy UI",
            API_START_TIMEOUT_S,
        )

        with httpx.Client(base_url=api, timeout=600) as client:
            sid = client.post("/v1/sessions").json()["session_id"]
            pdf = (pdf_dir / "crazyones.pdf").read_bytes()
            uploaded = client.post(
                f"/v1/sessions/{sid}/documents",
                files=[("files", ("crazyones.pdf", pdf, "application/pdf"))],
            )
            assert uploaded.status_code == 200, uploaded.text
            answer = client.post(
                f"/v1/sessions/{sid}/query",
                json={"question": "Who are the crazy ones?", "max_tokens": 48},
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["answer"].strip()
            assert answer.json()["sources"][0]["filename"] == "crazyones.pdf"

            survive_a_vllm_crash(client, sid, up)

        family = up.family()
        started = {p.pid: p.create_time() for p in family}
        commands = " ".join(" ".join(p.cmdline()) for p in family)
        # pgpt up, the API, the UI and vLLM (with its engine and parser workers) at least.
        assert len(family) >= 4
        assert "serve" in commands and "streamlit" in commands and "vllm" in commands
        # No file watcher: it would re-run the page on edits and exhaust inotify on a .venv.
        assert "--server.fileWatcherType none" in commands

        os.killpg(up.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
        try:
            up.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"pgpt up did not stop within {STOP_TIMEOUT_S} s of Ctrl-C")
        assert up.process.returncode == 0, up.tail()
        _, survivors = psutil.wait_procs(family, timeout=10)
        survivors = [p for p in survivors if alive(p, started[p.pid])]
        assert survivors == [], [" ".join(p.cmdline())[:120] for p in survivors]
        output = up.output.decode(errors="replace")
        assert "Stopped." in output
        # vLLM's log is down to warnings and errors, plus our one ready line.
        vllm_lines = [line for line in output.splitlines() if line.startswith("[vllm] ")]
        assert not [line for line in vllm_lines if " INFO " in line or "Route:" in line]
        assert output.count("vLLM is ready on http://") == 1
    finally:
        up.stop()  # only does anything if the test failed before stopping it
