"""An upload through the API: each file's name is sanitised and its size checked once, by
the multipart reader as the bytes arrive; the ingestor takes the file as read, in one
parser job. Fake embedder, real parser workers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient

import ingest.upload
from core.settings import load_settings
from ingest.upload import Upload
from rag.fakes import ScriptedGenerator
from serving.app import create_app

T = TypeVar("T")


@pytest.fixture(scope="module")
def client(fake_embedder: Any) -> Iterator[TestClient]:
    settings = load_settings(max_upload_mb=1)
    with TestClient(
        create_app(settings, embedder=fake_embedder, generator=ScriptedGenerator())
    ) as c:
        yield c


def upload(client: TestClient, *files: tuple[str, bytes]) -> Any:
    sid = client.post("/v1/sessions").json()["session_id"]
    parts = [("files", (name, data, "text/plain")) for name, data in files]
    return client.post(f"/v1/sessions/{sid}/documents", files=parts)


def test_each_file_is_named_once_and_never_checked_again_after_reading(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    names: list[str] = []
    received: list[str] = []
    jobs: list[str] = []
    sanitize = ingest.upload.sanitize_filename
    pool = client.app.state.services.parser_pool  # type: ignore[attr-defined]
    run = pool.run

    def named(filename: str) -> str:
        names.append(filename)
        return sanitize(filename)

    def counted_run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        jobs.append(fn.__name__)
        return run(fn, *args, **kwargs)

    def whole(*args: Any, **kwargs: Any) -> Upload:
        received.append("whole")
        raise AssertionError("an uploaded file was checked again")

    monkeypatch.setattr(ingest.upload, "sanitize_filename", named)
    monkeypatch.setattr(Upload, "received", whole)
    monkeypatch.setattr(pool, "run", counted_run)
    response = upload(client, ("../a.txt", b"Keepers rotate weekly."), ("b.txt", b"Fees rose."))
    assert response.status_code == 200, response.text
    filenames = [d["filename"] for d in response.json()["documents"]]
    assert (names, received, jobs, filenames) == (
        ["../a.txt", "b.txt"],
        [],
        ["read_upload", "read_upload"],
        ["a.txt", "b.txt"],
    )


def test_a_file_over_the_limit_is_refused_by_the_reader_before_any_job(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs: list[str] = []
    pool = client.app.state.services.parser_pool  # type: ignore[attr-defined]
    monkeypatch.setattr(pool, "run", lambda fn, *a, **k: jobs.append(fn.__name__))
    response = upload(client, ("big\u202etxt.exe", b"x" * (1024 * 1024 + 1)))
    assert response.status_code == 413
    error = response.json()["error"]
    assert (error["code"], jobs) == ("file_too_large", [])
    assert error["message"].startswith("'bigtxt.exe' is over 1 MB; the upload limit is 1 MB.")
