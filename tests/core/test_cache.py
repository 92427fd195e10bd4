"""Folders built once into the cache: built once, never half, readable by all."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from core.cache import build_cache_folder, make_world_readable


def has_weights(folder: Path) -> bool:
    return (folder / "weights.bin").is_file()


def write_weights(folder: Path) -> None:
    (folder / "weights.bin").write_bytes(b"w")


def test_a_complete_folder_is_not_built_again(tmp_path: Path) -> None:
    target = tmp_path / "models" / "m"
    calls: list[Path] = []

    def build(folder: Path) -> None:
        calls.append(folder)
        write_weights(folder)

    assert build_cache_folder(target, has_weights, build) == target
    assert build_cache_folder(target, has_weights, build) == target
    assert len(calls) == 1


def test_an_incomplete_leftover_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "m"
    target.mkdir()
    (target / "half.tmp").write_bytes(b"x")
    build_cache_folder(target, has_weights, write_weights)
    assert sorted(p.name for p in target.iterdir()) == ["weights.bin"]


def test_a_failed_build_leaves_nothing_but_the_lock(tmp_path: Path) -> None:
    def fail(folder: Path) -> None:
        write_weights(folder)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        build_cache_folder(tmp_path / "m", has_weights, fail)
    assert [p.name for p in tmp_path.iterdir()] == [".m.lock"]


def test_make_world_readable_opens_private_files_and_folders(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir(mode=0o700)
    (tmp_path / "sub" / "weights.safetensors").write_bytes(b"w")
    (tmp_path / "sub" / "weights.safetensors").chmod(0o600)
    tmp_path.chmod(0o700)
    make_world_readable(tmp_path)
    assert stat.S_IMODE((tmp_path / "sub" / "weights.safetensors").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "sub").stat().st_mode) == 0o755
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755
