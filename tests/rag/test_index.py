import numpy as np
import pytest

from core.errors import ConfigError
from rag.index import FaissCpuIndex, gpu_available, make_index


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


def test_factory_picks_cpu_without_a_gpu_and_refuses_forced_cuda() -> None:
    assert not gpu_available()  # CI has no GPU; the GPU path is chosen only when one is seen
    assert make_index(8, "auto").device == "cpu"
    with pytest.raises(ConfigError, match="PGPT_INDEX_DEVICE"):
        make_index(8, "cuda")
