"""Per-session in-memory stores: documents, chunks and their vectors, gone on delete or expiry."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from core.errors import CapacityError, DocumentNotFoundError, SessionNotFoundError
from core.memory import release_freed_memory
from ingest.models import Chunk, SourceDocument
from rag.conversation import Conversation
from rag.index import VectorIndex
from rag.lexical import DEFAULT_ANALYZER, DEFAULT_K1, LexicalIndex

log = logging.getLogger(__name__)

SESSION_ID_BYTES = 32  # 256 random bits: unguessable
CONVERSATION_MAX_TURNS = 20  # the Settings defaults, for stores built without settings
CONVERSATION_MAX_CHARS = 20_000


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    document_id: str
    filename: str
    media_type: str
    pages: int
    chunks: int
    size_bytes: int  # the uploaded file, kept in memory to show its pages
    memory_bytes: int  # that file plus its parsed text: what the memory caps count
    ocr_pages: tuple[int, ...] = ()  # pages whose text was read by OCR
    page_unit: str = "page"  # "page", "slide", "sheet" or "document" (no fixed pages)


@dataclass(eq=False, frozen=True, slots=True)
class Room:
    """Passages and document memory reserved in a session for one document (``reserve``)."""

    chunks: int
    memory_bytes: int


def megabytes(n: int) -> str:
    return f"{n / 1024**2:,.1f} MB"


def passages(n: int) -> str:
    return f"{n:,} passages"


class Budget:
    """A thread-safe counter of what all sessions hold (passages, bytes), with a hard limit.

    ``amount`` writes a quantity for people; ``setting`` names the knob that raises the limit.
    """

    def __init__(self, limit: int, *, amount: Callable[[int], str], setting: str) -> None:
        self.limit = limit
        self.used = 0
        self._amount = amount
        self._setting = setting
        self._lock = threading.Lock()

    def reserve(self, n: int) -> None:
        with self._lock:
            self._check(n)
            self.used += n

    def _check(self, n: int) -> None:
        if self.used + n > self.limit:
            raise CapacityError(
                f"The server holds {self._amount(self.used)} and its limit is "
                f"{self._amount(self.limit)}; {self._amount(n)} more do not fit. Try again "
                f"later or ask the operator to raise {self._setting}."
            )

    def release(self, n: int) -> None:
        with self._lock:
            self.used = max(0, self.used - n)


@dataclass(eq=False)
class Session:
    id: str
    index: VectorIndex
    ttl_s: float
    max_chunks: int
    budget: Budget  # passages of all sessions
    max_bytes: int  # of document memory (original files and their text) in this session
    byte_budget: Budget  # document memory of all sessions
    last_used: float = field(default_factory=time.time)
    requests_in_flight: int = 0  # a session answering a request never expires under it
    documents: dict[str, DocumentInfo] = field(default_factory=dict)
    conversation: Conversation = field(
        default_factory=lambda: Conversation(
            max_turns=CONVERSATION_MAX_TURNS, max_chars=CONVERSATION_MAX_CHARS
        )
    )
    chunks: dict[int, Chunk] = field(default_factory=dict)  # vector id -> chunk
    sources: dict[str, SourceDocument] = field(default_factory=dict)  # document -> its file
    # PDFium renders one page at a time anyway; this keeps one session from queueing many.
    render_lock: threading.Lock = field(default_factory=threading.Lock)
    _doc_ids: dict[str, np.ndarray] = field(default_factory=dict)  # document -> vector ids
    _next_id: int = 0
    # BM25 per (analyzer, k1), built on first hybrid search, dropped on change.
    _lexical: dict[tuple[str, float], LexicalIndex] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    # Room held for documents being embedded (``reserve``), not yet added.
    _rooms: set[Room] = field(default_factory=set)

    @property
    def expires_at(self) -> float:
        return self.last_used + self.ttl_s

    def expired(self, now: float) -> bool:
        return self.requests_in_flight == 0 and self.expires_at <= now

    @property
    def chunk_count(self) -> int:
        return len(self.chunks)

    @property
    def memory_bytes(self) -> int:
        """Document memory held: the original files and their parsed text."""
        return sum(info.memory_bytes for info in self.documents.values())

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Hold the session still while searching it."""
        with self._lock:
            yield

    def lexical_index(
        self, analyzer: str = DEFAULT_ANALYZER, k1: float = DEFAULT_K1
    ) -> LexicalIndex:
        """BM25 over this session's passages (with their context headers), rebuilt after
        documents change."""
        with self._lock:
            index = self._lexical.get((analyzer, k1))
            if index is None:
                index = LexicalIndex(
                    list(self.chunks),
                    [chunk.indexed_text for chunk in self.chunks.values()],
                    analyzer,
                    k1,
                )
                self._lexical[(analyzer, k1)] = index
            return index

    def reserve(self, filename: str, n: int, memory_bytes: int) -> Room:
        """The check of whether a document of ``n`` passages and ``memory_bytes`` of
        document memory fits this session and the server; it raises CapacityError, or
        holds the room until ``add_document`` takes it or ``release`` gives it back. Made
        before the costly step (embedding), so a concurrent upload cannot take the room."""
        with self._lock:
            reserved_chunks = sum(room.chunks for room in self._rooms)
            if self.chunk_count + reserved_chunks + n > self.max_chunks:
                raise CapacityError(
                    f"'{filename}' adds {n:,} passages, but this session holds "
                    f"{self.chunk_count + reserved_chunks:,} of at most {self.max_chunks:,}. "
                    "Remove a document or start a new session.",
                    filename=filename,
                )
            in_memory = self.memory_bytes + sum(room.memory_bytes for room in self._rooms)
            if in_memory + memory_bytes > self.max_bytes:
                raise CapacityError(
                    f"'{filename}' needs {megabytes(memory_bytes)} of memory, but this session "
                    f"holds {megabytes(in_memory)} of at most {megabytes(self.max_bytes)}. "
                    "Remove a document or start a new session.",
                    filename=filename,
                )
            self.budget.reserve(n)
            try:
                self.byte_budget.reserve(memory_bytes)
            except CapacityError:
                self.budget.release(n)
                raise
            room = Room(n, memory_bytes)
            self._rooms.add(room)
            return room

    def release(self, room: Room) -> None:
        """Give back room that no document took (its upload failed); idempotent."""
        with self._lock:
            if room in self._rooms:
                self._rooms.discard(room)
                self.budget.release(room.chunks)
                self.byte_budget.release(room.memory_bytes)

    def add_document(
        self,
        info: DocumentInfo,
        chunks: list[Chunk],
        vectors: np.ndarray,
        source: SourceDocument,
        room: Room | None = None,
    ) -> None:
        """Add a document into the ``room`` reserved for it (reserved here when None)."""
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        with self._lock:
            if room is None:
                room = self.reserve(info.filename, len(chunks), info.memory_bytes)
            elif room not in self._rooms:
                raise SessionNotFoundError(
                    f"This session was closed while '{info.filename}' was being read; create "
                    "a new one and upload it again."
                )
            if (room.chunks, room.memory_bytes) != (len(chunks), info.memory_bytes):
                raise ValueError("the room reserved is not this document's")
            self._rooms.discard(room)  # its budget is now the document's
            ids = np.arange(self._next_id, self._next_id + len(chunks), dtype=np.int64)
            self._next_id += len(chunks)
            self.index.add(ids, vectors)
            self.chunks.update(zip(ids.tolist(), chunks, strict=True))
            self._doc_ids[info.document_id] = ids
            self.documents[info.document_id] = info
            self.sources[info.document_id] = source
            self._lexical.clear()

    def source(self, document_id: str) -> tuple[DocumentInfo, SourceDocument]:
        """A document's info and the file it came from, to show its pages."""
        with self._lock:
            info = self.documents.get(document_id)
            if info is None:
                raise DocumentNotFoundError(f"No document with id {document_id!r} in this session.")
            return info, self.sources[document_id]

    def remove_document(self, document_id: str) -> DocumentInfo:
        with self._lock:
            info = self.documents.pop(document_id, None)
            if info is None:
                raise DocumentNotFoundError(f"No document with id {document_id!r} in this session.")
            ids = self._doc_ids.pop(document_id)
            self.index.remove(ids)
            for i in ids.tolist():
                del self.chunks[i]
            del self.sources[document_id]
            self.budget.release(len(ids))
            self.byte_budget.release(info.memory_bytes)
            self._lexical.clear()
        release_freed_memory()
        return info

    def close(self) -> None:
        """Drop every document and the conversation, give back any room still reserved,
        and free the index memory now."""
        with self._lock:
            for room in list(self._rooms):
                self.release(room)
            self.budget.release(len(self.chunks))
            self.byte_budget.release(self.memory_bytes)
            self.index.release()
            self.chunks.clear()
            self.sources.clear()
            self.documents.clear()
            self._doc_ids.clear()
            self._lexical.clear()
            self.conversation.clear()


class SessionStore:
    """All live sessions, with TTL expiry and capacity limits."""

    def __init__(
        self,
        *,
        index_factory: Callable[[], VectorIndex],
        ttl_s: float,
        max_sessions: int,
        max_chunks_per_session: int,
        max_total_chunks: int,
        max_bytes_per_session: int,
        max_total_bytes: int,
        conversation_max_turns: int = CONVERSATION_MAX_TURNS,
        conversation_max_chars: int = CONVERSATION_MAX_CHARS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._index_factory = index_factory
        self._ttl_s = ttl_s
        self._max_sessions = max_sessions
        self._max_chunks_per_session = max_chunks_per_session
        self._max_bytes_per_session = max_bytes_per_session
        self.budget = Budget(max_total_chunks, amount=passages, setting="PGPT_MAX_TOTAL_CHUNKS")
        self.byte_budget = Budget(
            max_total_bytes, amount=megabytes, setting="PGPT_MAX_TOTAL_DOCUMENT_MB"
        )
        self._conversation_max_turns = conversation_max_turns
        self._conversation_max_chars = conversation_max_chars
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self) -> Session:
        self.evict_expired()
        with self._lock:
            if len(self._sessions) >= self._max_sessions:
                raise CapacityError(
                    f"The server already holds {self._max_sessions} sessions. Try again later."
                )
            now = self._clock()
            session = Session(
                id=secrets.token_urlsafe(SESSION_ID_BYTES),
                index=self._index_factory(),
                ttl_s=self._ttl_s,
                max_chunks=self._max_chunks_per_session,
                budget=self.budget,
                max_bytes=self._max_bytes_per_session,
                byte_budget=self.byte_budget,
                conversation=Conversation(
                    max_turns=self._conversation_max_turns,
                    max_chars=self._conversation_max_chars,
                ),
                last_used=now,
            )
            self._sessions[session.id] = session
            return session

    def get(self, session_id: str) -> Session:
        """Return a live session and extend its life; expired or unknown ids are not found."""
        with self._lock:
            return self._live(session_id)

    @contextmanager
    def use(self, session_id: str) -> Iterator[Session]:
        """A live session held for one request: it cannot expire while the request runs
        (a long answer may outlast the idle timeout) and its idle time starts at the end."""
        with self._lock:
            session = self._live(session_id)
            session.requests_in_flight += 1
        try:
            yield session
        finally:
            with self._lock:
                session.requests_in_flight -= 1
                session.last_used = self._clock()

    def _live(self, session_id: str) -> Session:
        session = self._sessions.get(session_id)
        now = self._clock()
        if session is not None and session.expired(now):
            self._drop(session_id)
            session = None
        if session is None:
            raise SessionNotFoundError(
                "This session does not exist or has expired; create a new one."
            )
        session.last_used = now
        return session

    def delete(self, session_id: str) -> None:
        with self._lock:
            if session_id not in self._sessions:
                raise SessionNotFoundError(
                    "This session does not exist or has expired; create a new one."
                )
            self._drop(session_id)
        release_freed_memory()

    def evict_expired(self) -> int:
        now = self._clock()
        with self._lock:
            expired = [sid for sid, s in self._sessions.items() if s.expired(now)]
            for sid in expired:
                self._drop(sid)
        if expired:
            log.info("evicted %d expired session(s)", len(expired))
            release_freed_memory()
        return len(expired)

    def close_all(self) -> None:
        with self._lock:
            for sid in list(self._sessions):
                self._drop(sid)
        release_freed_memory()

    def _drop(self, session_id: str) -> None:
        self._sessions.pop(session_id).close()
