"""The UI through HAProxy in Chromium: upload, ask, follow-up, all on one api/ui pair.

Real HAProxy over two api/ui pairs (the browser pinned to one ui by cookie, each ui calling
only its own api), real vllm-router, fake vLLM replicas (serving/fakes.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from core.settings import AnswerMode
from deploy.haproxy import UI_COOKIE
from deploy.scale_demo import ScaleCluster, loopback_listen
from serving import fakes
from ui.sidebar import ANSWER_MODES

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_MS = 120_000
CHROMIUM = "/usr/bin/chromium"  # Debian's (make setup-browser); Playwright only drives it


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, settings) -> Iterator[ScaleCluster]:  # type: ignore[no-untyped-def]
    workdir: Path = tmp_path_factory.mktemp("scale-ui")
    listen = loopback_listen(workdir)
    env = {"PGPT_FOLLOWUP_REWRITE": "keywords", "PGPT_PARSER_WORKERS": "1"}
    built = ScaleCluster(settings, workdir, vllm_command=fakes.vllm_command, env=env, listen=listen)
    built.start(pairs=2, vllm_replicas=2)
    try:
        yield built
    finally:
        built.stop()


def ask(page: Page, question: str, nth: int) -> None:
    page.get_by_test_id("stChatInputTextArea").fill(question)
    page.keyboard.press("Enter")
    answer = page.get_by_test_id("stChatMessage").nth(nth)
    expect(answer.get_by_text("Answered by replica")).to_be_visible(timeout=TIMEOUT_MS)


def test_upload_question_and_follow_up_stay_on_one_pair(
    cluster: ScaleCluster, pdf_dir: Path, tmp_path: Path
) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(cluster.ui_url)
            uploader = page.get_by_test_id("stFileUploaderDropzoneInput")
            uploader.set_input_files([pdf_dir / "attention-is-all-you-need.pdf"])
            expect(page.get_by_text("15 pages")).to_be_visible(timeout=TIMEOUT_MS)
            page.get_by_text(ANSWER_MODES[AnswerMode.GENERATE]).click()
            ask(page, "How many P100 GPUs were used to train the big model?", 1)
            ask(page, "How long did its training take?", 3)
            cookies = page.context.cookies()
        finally:
            browser.close()
    pinned_to = {c["value"] for c in cookies if c["name"] == UI_COOKIE}
    sessions = {
        p.pair.name: httpx.get(f"{p.api_url}/healthz").json()["sessions"] for p in cluster.pairs
    }
    per_vllm = [fakes.parse_metrics(httpx.get(f"{r.url}/metrics").text) for r in cluster.vllms]
    chats = sorted(n for counts in per_vllm for n in counts.values())
    # One pair holds the browser's one session; both questions went to one vLLM replica.
    assert (len(pinned_to), sessions[next(iter(pinned_to))], sum(sessions.values()), chats) == (
        1,
        1,
        1,
        [2],
    )
