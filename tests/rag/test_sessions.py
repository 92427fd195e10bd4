import numpy as np
import pytest

from core.errors import CapacityError, DocumentNotFoundError, SessionNotFoundError
from ingest.models import Chunk, Page, SourceDocument
from rag.conversation import Turn
from rag.index import FaissCpuIndex
from rag.sessions import DocumentInfo, SessionStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_store(clock: Clock | None = None, **limits: int) -> SessionStore:
    return SessionStore(
        index_factory=lambda: FaissCpuIndex(4),
        ttl_s=60,
        max_sessions=limits.get("max_sessions", 10),
        max_chunks_per_session=limits.get("max_chunks_per_session", 100),
        max_total_chunks=limits.get("max_total_chunks", 1000),
        max_bytes_per_session=limits.get("max_bytes_per_session", 10_000),
        max_total_bytes=limits.get("max_total_bytes", 100_000),
        clock=clock or Clock(),
    )


def document(
    doc_id: str, n: int, size: int = 100
) -> tuple[DocumentInfo, list[Chunk], np.ndarray, SourceDocument]:
    """``n`` passages of a text file of ``size`` bytes."""
    text = "x" * size
    source = SourceDocument(text.encode(), "text/plain", (Page(1, text),))
    info = DocumentInfo(
        doc_id, f"{doc_id}.txt", "text/plain", 1, n, size, memory_bytes=source.memory_bytes
    )
    chunks = [Chunk(doc_id, info.filename, f"text {i}", 1, 1, 0, 6) for i in range(n)]
    vectors = np.eye(4, dtype=np.float32)[np.arange(n) % 4]
    return info, chunks, vectors, source


def test_session_ids_are_long_random_and_unique() -> None:
    store = make_store()
    ids = {store.create().id for _ in range(10)}
    assert len(ids) == 10
    assert all(len(i) >= 43 for i in ids)  # 32 bytes, base64url


def test_unknown_and_altered_ids_are_not_found() -> None:
    store = make_store()
    session = store.create()
    with pytest.raises(SessionNotFoundError):
        store.get(session.id[:-1] + ("A" if session.id[-1] != "A" else "B"))
    with pytest.raises(SessionNotFoundError):
        store.get("")


def test_ttl_expiry_evicts_and_use_extends_life() -> None:
    clock = Clock()
    store = make_store(clock)
    session = store.create()
    clock.now += 50
    store.get(session.id)  # touch
    clock.now += 50
    assert store.get(session.id) is session
    clock.now += 61
    assert store.evict_expired() == 1
    with pytest.raises(SessionNotFoundError):
        store.get(session.id)


def test_a_session_in_use_outlives_its_idle_timeout_and_idles_from_the_end() -> None:
    clock = Clock()
    store = make_store(clock)
    session = store.create()
    with store.use(session.id):
        clock.now += 200  # an answer that takes longer than the 60 s timeout
        assert (store.evict_expired(), store.get(session.id)) == (0, session)
    clock.now += 59
    assert store.get(session.id) is session
    clock.now += 61
    assert store.evict_expired() == 1


def test_remove_document_drops_its_chunks_and_vectors() -> None:
    store = make_store()
    session = store.create()
    session.add_document(*document("a", 3))
    session.add_document(*document("b", 2))
    session.remove_document("a")
    assert {c.document_id for c in session.chunks.values()} == {"b"}
    assert len(session.index) == 2
    assert list(session.sources) == ["b"]
    with pytest.raises(DocumentNotFoundError):
        session.source("a")
    with pytest.raises(DocumentNotFoundError):
        session.remove_document("a")


def test_per_session_and_global_caps_refuse_without_losing_documents() -> None:
    store = make_store(max_chunks_per_session=5, max_total_chunks=7)
    first = store.create()
    first.add_document(*document("a", 4))
    with pytest.raises(CapacityError, match=r"b\.txt"):
        first.add_document(*document("b", 2))
    second = store.create()
    with pytest.raises(CapacityError, match="PGPT_MAX_TOTAL_CHUNKS"):
        second.add_document(*document("c", 4))
    assert list(first.documents) == ["a"] and len(first.index) == 4
    store.delete(first.id)
    assert store.budget.used == 0
    second.add_document(*document("c", 4))


def test_original_files_count_in_the_per_session_and_global_memory_caps() -> None:
    # A text file of n bytes holds about 2n: its bytes and its text.
    store = make_store(max_bytes_per_session=9_000, max_total_bytes=12_000)
    first = store.create()
    a = document("a", 1, size=2_000)
    first.add_document(*a)
    assert store.byte_budget.used == first.memory_bytes == a[0].memory_bytes > 4_000
    with pytest.raises(CapacityError, match=r"b\.txt.*of at most"):
        first.add_document(*document("b", 1, size=2_500))
    second = store.create()
    with pytest.raises(CapacityError, match="PGPT_MAX_TOTAL_DOCUMENT_MB"):
        second.add_document(*document("c", 1, size=4_000))
    assert list(first.documents) == ["a"] and store.budget.used == 1
    first.remove_document("a")
    assert store.byte_budget.used == 0
    second.add_document(*document("c", 1, size=4_000))


def test_a_source_document_never_shows_its_content() -> None:
    source = SourceDocument(b"secret bytes", "text/plain", (Page(1, "secret text"),), "pw")
    assert "secret" not in repr(source) and "pw" not in repr(source)


def test_session_count_cap() -> None:
    store = make_store(max_sessions=2)
    store.create()
    store.create()
    with pytest.raises(CapacityError):
        store.create()


def test_delete_frees_everything() -> None:
    store = make_store()
    session = store.create()
    session.add_document(*document("a", 3))
    store.delete(session.id)
    assert len(store) == 0 and store.budget.used == 0 and store.byte_budget.used == 0
    assert not session.chunks and len(session.index) == 0 and not session.sources
    with pytest.raises(SessionNotFoundError):
        store.delete(session.id)


def test_delete_frees_the_conversation_with_the_documents() -> None:
    store = make_store()
    session = store.create()
    session.conversation.add(Turn("Why?", "Why?", "Because [1]."))
    store.delete(session.id)
    assert len(session.conversation) == 0 and session.conversation.chars == 0


def test_store_applies_the_conversation_caps() -> None:
    store = SessionStore(
        index_factory=lambda: FaissCpuIndex(4),
        ttl_s=60,
        max_sessions=10,
        max_chunks_per_session=100,
        max_total_chunks=1000,
        max_bytes_per_session=10_000,
        max_total_bytes=100_000,
        conversation_max_turns=2,
        conversation_max_chars=500,
    )
    conversation = store.create().conversation
    assert (conversation.max_turns, conversation.max_chars) == (2, 500)
