"""The "Check a text" box, driven by AppTest against the real API (fake embedder, real
FAISS and the verifier of /verify): what it sends, shows and forgets."""

from __future__ import annotations

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from core.api_models import Support, VerifiedSentence, VerifyRequest, VerifyResult
from tests.ui.conftest import ApiServer
from tests.ui.test_app import start_app, state, texts, upload
from ui.check_text import SUBMIT
from ui.client import ApiClient

NOTES = (
    "notes.md",
    b"# Field notes\n\nThe lighthouse in Bergen was built in 1892 by the harbour board.\n",
    "text/markdown",
)
STATED = "The lighthouse in Bergen was built in 1892 by the harbour board."
INVENTED = "The lighthouse in Bergen was painted blue in 1950."


@pytest.fixture()
def app(api_server: ApiServer, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    return start_app(monkeypatch, api_server.url)


def submit(at: AppTest, text: str) -> None:
    at.text_area(key="check_text").input(text)
    next(b for b in at.button if b.label == SUBMIT).click()
    at.run(timeout=120)
    assert not at.exception, at.exception


def test_the_box_waits_for_a_document(app: AppTest) -> None:
    assert next(b for b in app.button if b.label == SUBMIT).disabled
    assert "Add a document to check a text against it." in texts(app.main.caption)


def test_each_sentence_is_shown_with_its_label_and_what_backs_it(app: AppTest) -> None:
    upload(app, NOTES)
    submit(app, f"{STATED} {INVENTED}")

    result = state(app).text_check
    assert result is not None
    labels = [s.support for s in result.sentences]
    assert labels == [Support.SUPPORTED, Support.UNSUPPORTED]
    assert "2 sentences: 1 supported, 1 unsupported" in texts(app.main.markdown)
    [shown] = [h.value for h in app.main.html if 'data-pgpt="checked-text"' in h.value]
    assert shown.count('data-support="supported"') == 1
    assert shown.count('data-support="unsupported"') == 1
    assert "<b>notes.md</b>" in shown and "1892" in shown.split("<mark", 1)[1]
    assert 'data-backing="unbacked"' in shown  # 1950 stands nowhere


def test_an_empty_text_is_not_sent(app: AppTest) -> None:
    upload(app, NOTES)
    submit(app, "   ")
    assert state(app).text_check is None
    assert "Paste a text to check first." in texts(app.main.warning)


def test_removing_the_document_drops_the_check_that_quoted_it(app: AppTest) -> None:
    upload(app, NOTES)
    submit(app, STATED)
    assert state(app).text_check is not None
    [document] = state(app).documents
    app.button(key=f"remove-{document.document_id}").click()
    app.run()
    assert state(app).text_check is None
    assert not [h for h in app.main.html if 'data-pgpt="checked-text"' in h.value]


def test_the_client_sends_the_apis_request_and_reads_its_result() -> None:
    result = VerifyResult(
        sentences=[VerifiedSentence(text="Eight.", support=Support.WEAK, score=0.5)], sources=[]
    )
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=result.model_dump(mode="json"))

    client = ApiClient("http://api", transport=httpx.MockTransport(handle))
    assert client.verify("s1", VerifyRequest(text="Eight.")) == result
    [request] = seen
    assert (request.method, request.url.path) == ("POST", "/v1/sessions/s1/verify")
    assert request.content == b'{"text":"Eight."}'
