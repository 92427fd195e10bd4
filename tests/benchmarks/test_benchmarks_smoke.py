"""The benchmark entry points still run end to end (quick mode, tiny subsets)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow  # runs the benchmarks as subprocesses

# A guard against a hung run, not a speed requirement: the cores are shared.
HANG_GUARD_S = 900


def run_benchmark(module: str, *args: str) -> str:
    completed = subprocess.run(
        [sys.executable, "-m", module, "--quick", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return completed.stdout


def test_ingest_benchmark_quick(tmp_path: Path) -> None:
    output = tmp_path / "ingest.md"
    stdout = run_benchmark("benchmarks.ingest_bench", "--output", str(output))
    report = output.read_text(encoding="utf-8")
    assert report.strip() == stdout.strip()
    assert report.startswith("## Ingestion throughput")
    for heading in ("### CPU ceiling", "### bf16 against float32", "### Memory per 1,000 chunks"):
        assert heading in report
    assert "| crazyones.pdf | `ours` | 1 |" in report
    assert "|  | `langchain` | 1 |" in report
    assert "ours/LangChain pages/s = **" in report
    assert "python -m benchmarks.ingest_bench --quick --output" in report


def test_covidqa_benchmark_quick(tmp_path: Path) -> None:
    output = tmp_path / "retrieval.md"
    run_benchmark("benchmarks.covidqa_bench", "--output", str(output))
    report = output.read_text(encoding="utf-8")
    assert report.startswith("## Retrieval quality: COVID-QA")
    assert "| method | chunks | mean chunk chars |" in report
    for method in ("ours", "langchain", "langchain-matched"):
        assert f"| `{method}` |" in report
    assert "1 articles indexed together" in report
    assert "`ours` minus `langchain`: hit@5" in report


def test_render_benchmark_quick(tmp_path: Path) -> None:
    output = tmp_path / "render.md"
    stdout = run_benchmark("benchmarks.render_bench", "--output", str(output))
    report = output.read_text(encoding="utf-8")
    assert report.strip() == stdout.strip()
    assert report.startswith("## Page view: rendering cited pages")
    assert "| attention paper p. 7 (P100 citation) | 800 |" in report
    assert "| attention paper p. 7 (P100 citation) | 1400 |" in report
    assert "### Memory held per MB of uploaded PDF" in report
    assert "python -m benchmarks.render_bench --quick --output" in report
