"""rag.pipeline.Ingestor: an upload's name is sanitised once, its size checked once, and
the room it needs in the session checked once, by a reservation held while it is embedded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import ingest.upload
from core.errors import CapacityError, FileTooLargeError
from core.settings import load_settings
from ingest.loader import ParserPool
from ingest.upload import Receiving, Upload
from rag.pipeline import Ingestor
from rag.sessions import Room, Session, SessionStore
from serving.wiring import make_store

TEXT = b"Lighthouse keepers rotate every six weeks. " * 40


@pytest.fixture(scope="module")
def pool() -> Iterator[ParserPool]:
    pool = ParserPool(workers=1)
    yield pool
    pool.close()


@pytest.fixture()
def store(fake_embedder: Any) -> SessionStore:
    return make_store(load_settings(), fake_embedder)


def counted(calls: list[str], name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def count(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return function(*args, **kwargs)

    return count


def test_a_file_is_named_size_checked_and_given_room_once(
    fake_embedder: Any, pool: ParserPool, store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    session = store.create()
    sanitize, check = ingest.upload.sanitize_filename, Receiving.check
    monkeypatch.setattr(ingest.upload, "sanitize_filename", counted(calls, "name", sanitize))
    monkeypatch.setattr(Receiving, "check", counted(calls, "size", check))
    monkeypatch.setattr(session, "reserve", counted(calls, "room", session.reserve))
    info, _ = Ingestor(load_settings(), fake_embedder, pool).ingest(session, TEXT, "../a.txt")
    assert (sorted(calls), info.filename) == (["name", "room", "size"], "a.txt")


def test_an_upload_received_in_pieces_is_not_checked_again(
    fake_embedder: Any, pool: ParserPool, store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiving = Receiving("../a.txt", max_bytes=len(TEXT))
    for start in range(0, len(TEXT), 100):
        receiving.add(TEXT[start : start + 100])
    upload = receiving.upload()
    calls: list[str] = []
    monkeypatch.setattr(ingest.upload, "sanitize_filename", counted(calls, "name", str))
    monkeypatch.setattr(Receiving, "check", counted(calls, "size", Receiving.check))
    info, _ = Ingestor(load_settings(), fake_embedder, pool).add(store.create(), upload)
    assert (calls, info.filename, info.size_bytes) == ([], "a.txt", len(TEXT))


def test_a_piece_over_the_limit_is_refused_as_it_arrives() -> None:
    receiving = Receiving("big.txt", max_bytes=1024 * 1024)
    receiving.add(b"x" * 1024 * 1024)
    with pytest.raises(FileTooLargeError) as caught:
        receiving.add(b"x")
    assert caught.value.message.startswith("'big.txt' is over 1 MB; the upload limit is 1 MB.")


def test_room_is_held_while_embedding_so_a_concurrent_upload_cannot_take_it(
    store: SessionStore,
) -> None:
    session = store.create()
    held = session.reserve("a.txt", session.max_chunks - 1, 10)
    with pytest.raises(CapacityError, match=r"'b\.txt' adds 2 passages"):
        session.reserve("b.txt", 2, 10)
    session.release(held)
    assert (store.budget.used, store.byte_budget.used) == (0, 0)
    session.release(session.reserve("b.txt", 2, 10))


def test_a_failed_embedding_gives_the_room_back(
    fake_embedder: Any, pool: ParserPool, store: SessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    session = store.create()
    ingestor = Ingestor(load_settings(), fake_embedder, pool)

    def fail(texts: Any) -> np.ndarray:
        raise RuntimeError("embedder down")

    monkeypatch.setattr(fake_embedder, "embed", fail)
    with pytest.raises(RuntimeError):
        ingestor.add(session, Upload("a.txt", TEXT))
    assert (store.budget.used, store.byte_budget.used, session.documents) == (0, 0, {})


def test_a_session_closed_while_a_document_is_read_does_not_take_it(
    store: SessionStore,
) -> None:
    session: Session = store.create()
    room: Room = session.reserve("a.txt", 1, 10)
    store.delete(session.id)
    assert (store.budget.used, store.byte_budget.used) == (0, 0)
    session.release(room)  # nothing left to give back
    assert (store.budget.used, store.byte_budget.used) == (0, 0)
