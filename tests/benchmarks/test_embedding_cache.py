from pathlib import Path

import numpy as np

from benchmarks.embedding_cache import CachedVectors


def _vectors(texts: list[str]) -> np.ndarray:
    return np.array([[float(len(t)), 1.0] for t in texts], dtype=np.float32)


def _filled(path: Path, probe: np.ndarray) -> None:
    cache = CachedVectors(path, 2, probe)
    cache.lookup(["one", "three"], _vectors)
    cache.save()


def test_a_file_made_by_the_same_embedder_is_read(tmp_path: Path) -> None:
    path = tmp_path / "cache.npz"
    _filled(path, np.array([0.6, 0.8]))
    assert CachedVectors(path, 2, np.array([0.6, 0.8])).size == 2


def test_a_file_made_by_another_embedder_build_is_not_read(tmp_path: Path) -> None:
    path = tmp_path / "cache.npz"
    _filled(path, np.array([0.6, 0.8]))
    assert CachedVectors(path, 2, np.array([0.6, 0.801])).size == 0


def test_saving_over_a_stale_file_keeps_only_the_new_vectors(tmp_path: Path) -> None:
    path = tmp_path / "cache.npz"
    _filled(path, np.array([0.6, 0.8]))
    fresh = CachedVectors(path, 2, np.array([0.8, 0.6]))
    fresh.lookup(["seven"], _vectors)
    fresh.save()
    assert CachedVectors(path, 2, np.array([0.8, 0.6])).size == 1


def test_a_file_made_without_a_probe_is_not_read_with_one(tmp_path: Path) -> None:
    path = tmp_path / "cache.npz"
    cache = CachedVectors(path, 2)
    cache.lookup(["one"], _vectors)
    cache.save()
    assert CachedVectors(path, 2, np.array([0.6, 0.8])).size == 0
