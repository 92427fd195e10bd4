"""The vector indexes: the CPU one on faiss-cpu, the GPU one against a fake GPU flat index."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

import rag.index
from core.errors import ConfigError
from rag.index import FaissCpuIndex, FaissGpuIndex, make_index


def unit_vectors(n: int, d: int = 8, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_exact_search_returns_the_same_vector_first() -> None:
    index = FaissCpuIndex(8)
    vectors = unit_vectors(50)
    index.add(np.arange(100, 150), vectors)
    scores, ids = index.search(vectors[7:8], 3)
    assert ids[0, 0] == 107
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert len(index) == 50


def test_remove_keeps_other_vectors_and_their_ids() -> None:
    index = FaissCpuIndex(8)
    vectors = unit_vectors(20)
    index.add(np.arange(10), vectors[:10])
    index.add(np.arange(10, 20), vectors[10:])
    index.remove(np.arange(0, 10))
    assert len(index) == 10
    _, ids = index.search(vectors, 20)
    assert set(ids.ravel().tolist()) - {-1} == set(range(10, 20))
    np.testing.assert_allclose(index.vectors(np.array([15])), vectors[15:16], atol=1e-6)


def test_release_empties_the_index() -> None:
    index = FaissCpuIndex(8)
    index.add(np.arange(5), unit_vectors(5))
    index.release()
    assert len(index) == 0


class FakeGpuFlatIP:
    """faiss.GpuIndexFlatIP's interface over the CPU flat index: the GPU index's own logic
    (tombstones, filtering, compaction) runs unchanged on a machine without a GPU."""

    def __init__(self, resources: object, dimension: int) -> None:
        self.flat = faiss.IndexFlatIP(dimension)

    def add(self, vectors: np.ndarray) -> None:
        self.flat.add(vectors)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, rows = self.flat.search(queries, k)
        return scores, rows

    def reset(self) -> None:
        self.flat.reset()

    @property
    def ntotal(self) -> int:
        return int(self.flat.ntotal)


@pytest.fixture()
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> list[FakeGpuFlatIP]:
    """faiss as faiss-gpu on a machine with one GPU, whatever this machine has; the list
    fills with the flat indexes made on the (fake) card."""
    cards: list[FakeGpuFlatIP] = []

    def gpu_flat_index(resources: object, dimension: int) -> FakeGpuFlatIP:
        cards.append(FakeGpuFlatIP(resources, dimension))
        return cards[-1]

    monkeypatch.setattr(faiss, "GpuIndexFlatIP", gpu_flat_index, raising=False)
    monkeypatch.setattr(rag.index, "shared_gpu_resources", lambda: object())
    monkeypatch.setattr(rag.index, "gpu_available", lambda: True)
    return cards


@pytest.fixture()
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rag.index, "gpu_available", lambda: False)


def test_gpu_index_hides_removed_ids_until_half_are_dead_then_compacts(
    fake_gpu: list[FakeGpuFlatIP],
) -> None:
    index = make_index(8, "cuda")
    assert isinstance(index, FaissGpuIndex)
    [card] = fake_gpu
    vectors = unit_vectors(10)
    index.add(np.arange(100, 110), vectors)

    index.remove(np.array([100, 101, 102, 103, 104]))  # half dead: tombstoned, kept on the card
    assert (len(index), card.ntotal) == (5, 10)
    scores, ids = index.search(vectors[:5], 10)
    assert [sorted(row[row >= 0].tolist()) for row in ids] == [list(range(105, 110))] * 5
    assert np.isneginf(scores[ids < 0]).all()

    index.remove(np.array([105]))  # more than half dead: rebuilt from the host copy
    assert (len(index), card.ntotal) == (4, 4)
    _, ids = index.search(vectors[6:7], 4)
    assert ids[0, 0] == 106 and sorted(ids[0].tolist()) == [106, 107, 108, 109]
    np.testing.assert_allclose(index.vectors(np.array([109])), vectors[9:10], atol=1e-6)


def test_gpu_index_ignores_unknown_ids_and_release_empties_it(
    fake_gpu: list[FakeGpuFlatIP],
) -> None:
    index = make_index(8, "auto")
    assert isinstance(index, FaissGpuIndex)
    [card] = fake_gpu
    index.add(np.arange(4), unit_vectors(4))
    index.remove(np.array([42]))
    assert (len(index), card.ntotal) == (4, 4)
    index.release()
    assert (len(index), card.ntotal) == (0, 0)
    assert index.vectors(np.array([], dtype=np.int64)).shape == (0, 8)


def test_factory_picks_the_cpu_index_without_a_gpu_and_refuses_forced_cuda(no_gpu: None) -> None:
    assert make_index(8, "auto").device == "cpu"
    assert make_index(8, "cpu").device == "cpu"
    with pytest.raises(ConfigError, match="PGPT_INDEX_DEVICE"):
        make_index(8, "cuda")


def test_factory_picks_the_gpu_index_when_one_is_seen(fake_gpu: list[FakeGpuFlatIP]) -> None:
    assert make_index(8, "auto").device == "cuda"
    assert make_index(8, "cpu").device == "cpu"
