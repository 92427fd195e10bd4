"""The shipped code stays in files a reader can hold in mind (tests and benchmarks aside)."""

from __future__ import annotations

from tests.conftest import PROJECT_ROOT

MAX_LINES = 450
PACKAGES = ("core", "ingest", "rag", "serving", "ui", "deploy")


def test_no_shipped_file_is_over_the_limit() -> None:
    files = [
        *(p for name in PACKAGES for p in (PROJECT_ROOT / name).rglob("*.py")),
        PROJECT_ROOT / "app.py",
    ]
    long = {
        str(path.relative_to(PROJECT_ROOT)): lines
        for path in files
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}
