"""benchmarks/proxy_bench.py end to end on a few sessions: it runs, and its remap shares
say what the designs promise (the stick table moves nothing on scale-out; a consistent
hash moves nothing on scale-in but the removed replica's sessions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import proxy_bench

pytestmark = pytest.mark.slow  # starts three api replicas and HAProxy


def test_proxy_bench_quick(tmp_path: Path) -> None:
    report = tmp_path / "proxy.md"
    proxy_bench.main(["--rounds", "20", "--sessions", "60", "--output", str(report)])
    text = report.read_text(encoding="utf-8")
    figures = json.loads((tmp_path / "results" / "proxy.json").read_text(encoding="utf-8"))
    broken = next(f for f in figures["figures"] if f["metric"].startswith("live sessions"))
    assert (broken["value"], "| 3->2 moved | 0.0% | 0.0% |" in text) == (0.0, True)
