"""In-memory vector indexes (exact inner product on normalized vectors = cosine)."""

from __future__ import annotations

import functools
import logging
from typing import Any, Protocol

import faiss
import numpy as np

from core.errors import ConfigError

log = logging.getLogger(__name__)


class VectorIndex(Protocol):
    device: str

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add float32 vectors under int64 ids; existing vectors are untouched."""
        ...

    def remove(self, ids: np.ndarray) -> None:
        """Forget these ids; the rest is not rebuilt."""
        ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return (scores, ids), each (len(queries), k), best first; missing slots have id -1."""
        ...

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of these ids."""
        ...

    def __len__(self) -> int: ...

    def release(self) -> None:
        """Free the memory now instead of at garbage collection."""
        ...


class FaissCpuIndex:
    """``IndexFlatIP`` behind an id map: exact search, O(1) add, removal without a rebuild."""

    device = "cpu"

    def __init__(self, dimension: int) -> None:
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._index.add_with_ids(_as_f32(vectors), np.asarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> None:
        # faiss's Python wrapper accepts an id array here; its stubs only know IDSelector.
        self._index.remove_ids(np.asarray(ids, dtype=np.int64))  # type: ignore[arg-type]

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, ids = self._index.search(_as_f32(queries), k)
        return scores, ids

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        return (
            np.vstack([self._index.reconstruct(int(i)) for i in ids])
            if len(ids)
            else _empty(self._index.d)
        )

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def release(self) -> None:
        self._index.reset()


class FaissGpuIndex:
    """``GpuIndexFlatIP`` for a CUDA server.

    GPU flat indexes cannot remove ids, so removals are tombstoned and filtered at
    search time; the index is compacted from a host copy once half of it is dead.
    """

    device = "cuda"

    def __init__(self, dimension: int) -> None:
        self._dimension = dimension
        self._index = faiss.GpuIndexFlatIP(shared_gpu_resources(), dimension)
        self._host_vectors: dict[int, np.ndarray] = {}  # for compaction and vectors()
        self._positions: list[int] = []  # GPU row -> id
        self._dead: set[int] = set()

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        vectors = _as_f32(vectors)
        self._index.add(vectors)
        for i, v in zip(ids.tolist(), vectors, strict=True):
            self._positions.append(i)
            self._host_vectors[i] = v

    def remove(self, ids: np.ndarray) -> None:
        for i in ids.tolist():
            if self._host_vectors.pop(i, None) is not None:
                self._dead.add(i)
        if len(self._dead) * 2 > len(self._positions):
            self._compact()

    def _compact(self) -> None:
        self._index.reset()
        self._positions = list(self._host_vectors)
        self._dead.clear()
        if self._positions:
            self._index.add(np.vstack(list(self._host_vectors.values())))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        fetch = min(k + len(self._dead), max(len(self._positions), 1))
        raw_scores, rows = self._index.search(_as_f32(queries), fetch)
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        for q in range(len(queries)):
            kept = [
                (s, self._positions[r])
                for s, r in zip(raw_scores[q], rows[q], strict=True)
                if r >= 0 and self._positions[r] not in self._dead
            ][:k]
            for j, (s, i) in enumerate(kept):
                scores[q, j], ids[q, j] = s, i
        return scores, ids

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        if not len(ids):
            return _empty(self._dimension)
        return np.vstack([self._host_vectors[int(i)] for i in ids])

    def __len__(self) -> int:
        return len(self._host_vectors)

    def release(self) -> None:
        self._index.reset()
        self._host_vectors.clear()
        self._positions.clear()
        self._dead.clear()


@functools.cache
def shared_gpu_resources() -> Any:
    """One set of GPU scratch buffers per process: each set reserves ~1.5 GiB, so one per
    session would exhaust the card after a few sessions."""
    return faiss.StandardGpuResources()


def gpu_available() -> bool:
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def make_index(dimension: int, device: str = "auto") -> VectorIndex:
    """'auto' uses faiss-gpu when it is installed and sees a GPU, else the CPU index."""
    if device == "cuda" or (device == "auto" and gpu_available()):
        if not gpu_available():
            raise ConfigError(
                "PGPT_INDEX_DEVICE=cuda but faiss has no GPU support or sees no GPU; "
                "install faiss-gpu or set PGPT_INDEX_DEVICE=cpu."
            )
        return FaissGpuIndex(dimension)
    return FaissCpuIndex(dimension)


def _as_f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def _empty(dimension: int) -> np.ndarray:
    return np.zeros((0, dimension), dtype=np.float32)
