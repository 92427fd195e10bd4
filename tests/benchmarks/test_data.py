"""`make data`: documents by checksum from ../shared/data or a download, never by location alone."""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks import data
from tests.support import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on loopback serving a folder: (base URL, folder)."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", served
    finally:
        server.shutdown()
        server.server_close()


SMALL = (
    "pdfs/crazyones.pdf",
    "pdfs/crazyones-encrypted-256.pdf",
    "pdfs/images-with-little-text.pdf",
)


def small_manifest() -> list[data.DataFile]:
    return [entry for entry in data.load_manifest() if entry.name in SMALL]


def serve(folder: Path, name: str, content: bytes) -> None:
    target = folder / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)


def test_make_data_takes_the_shared_copies_and_downloads_nothing(tmp_path: Path) -> None:
    # The mirror is a closed port: any download attempt would fail the run.
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.data", "--mirror", f"http://127.0.0.1:{free_port()}"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PGPT_DATA_CACHE": str(tmp_path / "cache")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    required = len([entry for entry in data.load_manifest() if not entry.optional])
    assert (result.returncode, result.stdout.split("(")[1].split(",")[0]) == (
        0,
        f"{required} from {data.SHARED_DATA}",
    )


def test_a_benchmark_only_file_that_cannot_be_had_does_not_fail_make_data(
    tmp_path: Path, file_server: tuple[str, Path]
) -> None:
    url, folder = file_server
    (entry,) = small_manifest()[:1]
    serve(folder, entry.name, (data.SHARED_DATA / entry.name).read_bytes())
    holdout = data.DataFile("holdout/a.pdf", 10, "0" * 64, "test", "unused", optional=True)
    report = data.fill_cache([entry, holdout], cache_dir=tmp_path, shared_dir=None, mirror=url)
    assert (report.ok, report.downloaded, report.optional_missing) == (
        True,
        [entry.name],
        [f"holdout/a.pdf  <- {url}/holdout/a.pdf (HTTP 404)"],
    )


def test_a_clean_cache_is_filled_from_the_server_and_verified(
    tmp_path: Path, file_server: tuple[str, Path]
) -> None:
    url, folder = file_server
    for entry in small_manifest():
        serve(folder, entry.name, (data.SHARED_DATA / entry.name).read_bytes())
    cache_dir = tmp_path / "cache"
    report = data.fill_cache(small_manifest(), cache_dir=cache_dir, shared_dir=None, mirror=url)
    assert (sorted(report.downloaded), report.ok) == (sorted(SMALL), True)
    assert all(data.matches(cache_dir / entry.name, entry) for entry in small_manifest())


def test_a_tampered_download_is_refused_by_name_and_not_kept(
    tmp_path: Path, file_server: tuple[str, Path]
) -> None:
    url, folder = file_server
    for entry in small_manifest():
        content = (data.SHARED_DATA / entry.name).read_bytes()
        if entry.name == "pdfs/crazyones.pdf":
            content = content[:100] + bytes([content[100] ^ 1]) + content[101:]
        serve(folder, entry.name, content)
    cache_dir = tmp_path / "cache"
    report = data.fill_cache(small_manifest(), cache_dir=cache_dir, shared_dir=None, mirror=url)
    assert [reason.split(":")[0] for reason in report.refused] == ["pdfs/crazyones.pdf"]
    assert not (cache_dir / "pdfs/crazyones.pdf").exists()


def test_a_changed_cached_file_is_removed_and_fetched_again(
    tmp_path: Path, file_server: tuple[str, Path]
) -> None:
    url, folder = file_server
    entry = small_manifest()[0]
    original = (data.SHARED_DATA / entry.name).read_bytes()
    serve(folder, entry.name, original)
    cache_dir = tmp_path / "cache"
    serve(cache_dir, entry.name, original[:-10])
    report = data.fill_cache([entry], cache_dir=cache_dir, shared_dir=None, mirror=url)
    assert (report.downloaded, (cache_dir / entry.name).read_bytes() == original) == (
        [entry.name],
        True,
    )


def test_a_missing_source_gives_one_message_naming_each_file_and_its_url(
    tmp_path: Path, file_server: tuple[str, Path]
) -> None:
    url, _ = file_server  # serves nothing: every file is a 404
    report = data.fill_cache(small_manifest(), cache_dir=tmp_path, shared_dir=None, mirror=url)
    message = data.explain(report, tmp_path, None)
    assert [line.split()[0] for line in message.splitlines()[1:4]] == list(SMALL)
    assert f"{url}/pdfs/crazyones.pdf (HTTP 404)" in message


def test_the_financebench_questions_are_derived_from_the_upstream_file_exactly() -> None:
    """Upstream rows carry more fields and more filings; the dev set keeps 32 rows, 7 fields."""
    entries = data.load_manifest()
    (questions,) = [e for e in entries if e.name == "financebench-dev/questions.jsonl"]
    local = (data.SHARED_DATA / questions.name).read_bytes()
    upstream = []
    for line in local.decode().splitlines():
        row = json.loads(line)
        row["justification"] = "..."
        row["evidence"] = [{**e, "evidence_text_full_page": "..."} for e in row["evidence"]]
        upstream.append(row)
    upstream.insert(3, {**upstream[0], "doc_name": "INTEL_2023_8K"})
    source = "\n".join(json.dumps(row, separators=(",", ":")) for row in upstream).encode()
    assert data.derive_financebench_questions(source, questions, entries) == local


def test_a_bare_clone_without_data_or_network_stops_at_make_data_in_seconds(
    tmp_path: Path,
) -> None:
    clone = tmp_path / "alone" / "repo"  # no ../shared beside it
    subprocess.run(["git", "clone", "-q", str(PROJECT_ROOT), str(clone)], check=True)
    started = time.monotonic()
    result = subprocess.run(
        ["make", "test"],
        cwd=clone,
        env={
            **os.environ,
            "PGPT_DATA_CACHE": str(tmp_path / "empty-cache"),
            "PGPT_DATA_MIRROR": f"http://127.0.0.1:{free_port()}",
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    elapsed = time.monotonic() - started
    assert result.returncode != 0
    assert "Missing test documents" in result.stderr
    assert (elapsed < 30, (clone / ".venv").exists()) == (True, False)
    shutil.rmtree(clone)
