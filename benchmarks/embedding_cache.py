"""A dev-only on-disk cache of the benchmarks' own embeddings, so query-side changes are cheap.

Benchmark data only: the product never imports this module. The cache file holds the
SHA-256 of each embedded text and its vector, never the text itself, under
``~/.cache/privategptpp-bench/``. Delete the folder to start cold; pass ``--no-cache``
to a benchmark to bypass it (ingestion timings are always measured without it).
A file also keeps the vector of one fixed probe text: when today's embedder gives that
text another vector (other weights or quantization), the file is stale and the run starts
cold instead of mixing two embedders' vectors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from benchmarks.common import progress
from rag.embedding import Embedder

CACHE_DIR = Path.home() / ".cache" / "privategptpp-bench"
PROBE_TEXT = "Probe: 8 NVIDIA P100 GPUs trained the big model for 3.5 days (page 7)."
PROBE_TOLERANCE = 1e-4  # the same build gives the same vector to the bit


def probe_vector(embedder: Embedder) -> np.ndarray:
    """The embedder's vector of PROBE_TEXT, embedded alone: what a cache file must match."""
    return np.asarray(embedder.embed([PROBE_TEXT])[0])


def _key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class CachedVectors:
    """SHA-256 of a text -> its vector, loaded from and saved to one .npz file."""

    def __init__(self, path: Path | None, dimension: int, probe: np.ndarray | None = None) -> None:
        """``path`` None: in memory only, for one run. ``probe``: today's vector of
        PROBE_TEXT; a file made with another one is stale and not read."""
        self.path = path
        self._dimension = dimension
        self._probe = probe
        self._rows: dict[bytes, np.ndarray] = {}
        self._dirty = False
        if path is not None and path.exists():
            with np.load(path) as data:
                if self._current(data):
                    keys, vectors = data["keys"], data["vectors"]
                    self._rows = {bytes(k): v for k, v in zip(keys, vectors, strict=True)}
                else:
                    progress(f"  embedding cache: {path} is from another embedder build; cold")

    def _current(self, data: np.lib.npyio.NpzFile) -> bool:
        if self._probe is None:
            return True
        if "probe" not in data.files or data["probe"].shape != self._probe.shape:
            return False
        return bool(np.allclose(data["probe"], self._probe, atol=PROBE_TOLERANCE, rtol=0.0))

    def lookup(self, texts: Sequence[str], embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """Vectors of ``texts``; the ones never seen are embedded with ``embed`` and kept."""
        keys = [_key(text) for text in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self._rows))
        if missing:
            wanted = {k: i for i, k in enumerate(keys)}
            fresh = embed([texts[wanted[k]] for k in missing])
            self._rows.update(zip(missing, fresh, strict=True))
            self._dirty = True
        if not keys:
            return np.zeros((0, self._dimension), dtype=np.float32)
        return np.vstack([self._rows[k] for k in keys]).astype(np.float32)

    @property
    def size(self) -> int:
        return len(self._rows)

    def save(self) -> None:
        """Merge into the file (other benchmark processes may have added vectors since)."""
        if not self._dirty or self.path is None:
            return
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.path.exists():
                with np.load(self.path) as data:
                    if self._current(data):
                        for key, vector in zip(data["keys"], data["vectors"], strict=True):
                            self._rows.setdefault(bytes(key), vector)
            keys = np.array(list(self._rows), dtype="S32")
            vectors = np.vstack(list(self._rows.values())).astype(np.float32)
            probe = np.zeros(0, np.float32) if self._probe is None else self._probe
            temporary = self.path.with_suffix(".tmp.npz")
            np.savez(temporary, keys=keys, vectors=vectors, probe=probe)
            temporary.replace(self.path)
        self._dirty = False
        progress(f"  embedding cache: {len(keys)} vectors in {self.path}")


class CachingEmbedder:
    """An Embedder that looks every text up in a CachedVectors before embedding it."""

    def __init__(self, embedder: Embedder, cache: CachedVectors) -> None:
        self._embedder = embedder
        self._cache = cache
        self.name = embedder.name
        self.device = embedder.device
        self.dtype = embedder.dtype
        self.dimension = embedder.dimension
        self.max_tokens = embedder.max_tokens
        self.count_tokens = embedder.count_tokens  # picklable: chunking runs in a worker

    @classmethod
    def ours(cls, embedder: Embedder, batch_size: int) -> CachingEmbedder:
        """Our embedder behind its own on-disk cache of vectors (benchmark data only).

        The batch size is part of the file's name: int8 vectors depend a little on the
        batch they were embedded in (dynamic quantization scales over the batch).
        """
        path = cache_file("ours", embedder.name, f"{embedder.dtype}-batch{batch_size}")
        return cls(embedder, CachedVectors(path, embedder.dimension, probe_vector(embedder)))

    @property
    def cached_count(self) -> int:
        return self._cache.size

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self._cache.lookup(texts, lambda fresh: self._embedder.embed(fresh))

    def save(self) -> None:
        self._cache.save()


def cache_file(kind: str, name: str, dtype: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{kind}-{name}-{dtype}")
    return CACHE_DIR / f"{safe}.npz"
