"""ingest.loader: dispatch, limits, filename hygiene and the worker pool with its timeout."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import psutil
import pytest

from core.errors import (
    DocumentError,
    DocumentTooComplexError,
    EmptyDocumentError,
    FileTooLargeError,
    PasswordRequiredError,
    UnsupportedFileTypeError,
)
from ingest.loader import ParserPool, load_document
from ingest.models import ParsedDocument
from ingest.pdf import parse_pdf
from ingest.upload import sanitize_filename
from tests.conftest import PROJECT_ROOT

LIMITS = {"max_bytes": 50 * 1024 * 1024, "max_pages": 2000, "timeout_s": 60.0}


def load(data: bytes, filename: str, **overrides: object) -> ParsedDocument:
    return load_document(data, filename, **{**LIMITS, **overrides})  # type: ignore[arg-type]


def assert_names_file(error: DocumentError, filename: str) -> None:
    assert error.filename == filename
    assert f"'{filename}'" in error.message


# --- dispatch -----------------------------------------------------------------------


def test_pdf(attention_pdf: bytes) -> None:
    doc = load(attention_pdf, "attention.pdf")
    assert (doc.media_type, doc.page_count, doc.filename) == (
        "application/pdf",
        15,
        "attention.pdf",
    )
    assert "8 NVIDIA P100 GPUs" in doc.pages[6].text


def test_pdf_named_txt_is_read_as_pdf(pdf_dir: Path) -> None:
    doc = load((pdf_dir / "crazyones.pdf").read_bytes(), "crazyones.txt")
    assert doc.media_type == "application/pdf"
    assert doc.pages[0].text.startswith("The Crazy Ones")


@pytest.mark.parametrize(
    "filename,media_type",
    [
        ("notes.txt", "text/plain"),
        ("notes.text", "text/plain"),
        ("NOTES.TXT", "text/plain"),
        ("notes.md", "text/markdown"),
        ("notes.Markdown", "text/markdown"),
    ],
)
def test_text_and_markdown(filename: str, media_type: str) -> None:
    doc = load(b"# Title\n\nSome text.\n", filename)
    assert doc.media_type == media_type
    assert doc.pages[0].text == "# Title\n\nSome text.\n"
    assert [h.title for h in doc.headings] == (["Title"] if media_type == "text/markdown" else [])


def test_password_reaches_the_worker_and_errors_come_back_typed(pdf_dir: Path) -> None:
    data = (pdf_dir / "encrypted-password-openpassword.pdf").read_bytes()
    with pytest.raises(PasswordRequiredError) as caught:
        load(data, "uploads/secret.pdf")
    assert_names_file(caught.value, "secret.pdf")
    assert load(data, "secret.pdf", password="openpassword").pages[0].text


@pytest.mark.parametrize("filename", ["report.odt", "old.doc", "archive", "book.epub"])
def test_unsupported_types_list_what_is_accepted(filename: str) -> None:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    with pytest.raises(UnsupportedFileTypeError) as caught:
        load(buffer.getvalue(), filename)
    assert_names_file(caught.value, filename)
    for accepted in (".pdf", ".txt", ".md", ".docx", ".pptx", ".xlsx", ".csv", ".html", ".png"):
        assert accepted in caught.value.message


def test_random_bytes_named_pdf() -> None:
    with pytest.raises(UnsupportedFileTypeError) as caught:
        load(os.urandom(2048).replace(b"%PDF-", b""), "invoice.pdf")
    assert_names_file(caught.value, "invoice.pdf")
    assert "is not a PDF" in caught.value.message


def test_too_large(attention_pdf: bytes) -> None:
    with pytest.raises(FileTooLargeError) as caught:
        load(attention_pdf, "attention.pdf", max_bytes=1024 * 1024)
    assert_names_file(caught.value, "attention.pdf")
    assert "2.2 MB" in caught.value.message
    assert "limit is 1 MB" in caught.value.message


@pytest.mark.parametrize("filename", ["empty.pdf", "empty.txt", "empty.md"])
def test_empty(filename: str) -> None:
    with pytest.raises(EmptyDocumentError) as caught:
        load(b"", filename)
    assert_names_file(caught.value, filename)


def test_page_limit(attention_pdf: bytes) -> None:
    with pytest.raises(DocumentTooComplexError) as caught:
        load(attention_pdf, "attention.pdf", max_pages=5)
    assert_names_file(caught.value, "attention.pdf")


# --- filenames ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw,clean",
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\Desktop\\report.pdf", "report.pdf"),
        ("/tmp/../notes.md", "notes.md"),
        ("bad\x00name\r\n.txt", "badname.txt"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),  # right-to-left override removed
        ("  spaced   out  .pdf ", "spaced out .pdf"),
        ("..", "document"),
        ("", "document"),
        ("dir/", "document"),
    ],
)
def test_sanitize_filename(raw: str, clean: str) -> None:
    assert sanitize_filename(raw) == clean


def test_long_filenames_keep_their_extension() -> None:
    name = sanitize_filename("x" * 500 + ".pdf")
    assert len(name) <= 120
    assert name.endswith(".pdf")


def test_errors_show_the_sanitized_name() -> None:
    with pytest.raises(EmptyDocumentError) as caught:
        load(b"", "../../etc/passwd.txt")
    assert caught.value.filename == "passwd.txt"
    assert "../" not in caught.value.message


# --- time limit and the worker pool ------------------------------------------------


@pytest.fixture
def pool() -> Iterator[ParserPool]:
    pool = ParserPool(workers=2)
    yield pool
    pool.close()


def test_parse_over_the_time_limit_is_stopped(attention_pdf: bytes) -> None:
    # Parsing the paper takes well over 10 ms, so the limit always trips.
    with pytest.raises(DocumentTooComplexError) as caught:
        load(attention_pdf, "attention.pdf", timeout_s=0.01)
    assert_names_file(caught.value, "attention.pdf")
    assert "PGPT_PARSE_TIMEOUT_S" in caught.value.message
    # The shared pool has replaced the killed worker and keeps working.
    assert load(attention_pdf, "attention.pdf").page_count == 15


def test_hung_worker_is_killed_and_replaced(pool: ParserPool, pdf_dir: Path) -> None:
    pool.warm_up()
    before = set(pool.worker_pids)
    assert len(before) == 2
    with pytest.raises(DocumentTooComplexError) as caught:
        pool.run(time.sleep, 600, timeout_s=0.5, filename="hang.pdf")
    assert_names_file(caught.value, "hang.pdf")
    killed = before - set(pool.worker_pids)
    assert len(killed) == 1
    assert not _alive(killed.pop())
    # A successor starts in the background, without waiting for the next upload.
    deadline = time.monotonic() + 60
    while len(pool.worker_pids) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(pool.worker_pids) == 2
    doc = pool.run(
        parse_pdf,
        (pdf_dir / "crazyones.pdf").read_bytes(),
        "crazyones.pdf",
        max_pages=10,
        timeout_s=60,
        filename="crazyones.pdf",
    )
    assert doc.page_count == 1


def test_crashed_worker_is_replaced(pool: ParserPool) -> None:
    with pytest.raises(DocumentTooComplexError) as caught:
        pool.run(os._exit, 1, timeout_s=30, filename="crash.pdf")
    assert_names_file(caught.value, "crash.pdf")
    for _ in range(3):  # more jobs than workers: every slot is usable again
        assert pool.run(sum, [1, 2, 3], timeout_s=30, filename="ok.txt") == 6


def test_closed_pool_stops_its_workers() -> None:
    pool = ParserPool(workers=2)
    pool.warm_up()
    pids = pool.worker_pids
    assert len(pids) == 2
    pool.close()
    assert not [pid for pid in pids if _alive(pid)]
    with pytest.raises(RuntimeError):
        pool.run(sum, [1], timeout_s=5, filename="late.txt")


def test_parallel_loads(pdf_dir: Path, attention_pdf: bytes) -> None:
    results: dict[str, int] = {}

    def work(name: str, data: bytes) -> None:
        results[name] = load(data, name).page_count

    federal = (pdf_dir / "federal-register-2020-17221.pdf").read_bytes()
    threads = [
        threading.Thread(target=work, args=("attention.pdf", attention_pdf)),
        threading.Thread(target=work, args=("federal.pdf", federal)),
        threading.Thread(target=work, args=("notes.txt", b"plain text")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {"attention.pdf": 15, "federal.pdf": 15, "notes.txt": 1}


EXIT_SCRIPT = """
import json, sys, threading
import psutil
from ingest.loader import get_parser_pool, load_document

def main():
    doc = load_document(sys.stdin.buffer.read(), "attention.pdf",
                        max_bytes=10**8, max_pages=100, timeout_s=60)
    assert doc.page_count == 15
    if sys.argv[1] == "busy":  # leave a job hanging in a worker at exit
        import socket, urllib.request
        silent = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        threading.Thread(
            target=get_parser_pool().run,
            args=(urllib.request.urlopen, url),
            kwargs={"timeout_s": 3600, "filename": "hang.pdf"},
            daemon=True,
        ).start()
        connection, _ = silent.accept()  # the job is running: it waits for a reply
    print(json.dumps([p.pid for p in psutil.Process().children(recursive=True)]))

if __name__ == "__main__":
    main()
"""


@pytest.mark.slow  # a subprocess that parses the paper
@pytest.mark.parametrize("mode", ["idle", "busy"])
def test_no_orphan_processes_after_exit(attention_pdf: bytes, tmp_path: Path, mode: str) -> None:
    script = tmp_path / "exit_check.py"
    script.write_text(textwrap.dedent(EXIT_SCRIPT))
    finished = subprocess.run(
        [sys.executable, str(script), mode],
        input=attention_pdf,
        capture_output=True,
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        timeout=120,  # a hang here means the exit hook failed to stop a busy worker
        check=True,
    )
    children = [int(pid) for pid in finished.stdout.decode().strip().strip("[]").split(",")]
    assert len(children) >= 2  # at least the fork server and a worker
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in children if _alive(pid)] == []


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_workers_never_rerun_the_callers_main_module(tmp_path: Path) -> None:
    """A Streamlit page or a script without a main guard must not run again in a worker."""
    script = tmp_path / "no_main_guard.py"
    script.write_text(
        "from ingest.loader import load_document\n"
        "print('main module ran')\n"
        "doc = load_document(b'some words', 'a.txt', max_bytes=1000, max_pages=1, timeout_s=60)\n"
        "print(doc.pages[0].text)\n"
    )
    completed = subprocess.run(
        [sys.executable, str(script)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.splitlines() == ["main module ran", "some words"]
