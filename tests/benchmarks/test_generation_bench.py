"""The generation benchmark still runs end to end (quick mode: one short round, 2 requests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import PROJECT_ROOT
from tests.plugins.vllm_server import VLLMServerHandle

# A guard against a hung run, not a speed requirement: the cores are shared.
HANG_GUARD_S = 1200


def test_generation_benchmark_quick(tmp_path: Path, vllm_server: VLLMServerHandle) -> None:
    output = tmp_path / "generation.md"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.generation_bench",
            "--quick",
            "--output",
            str(output),
            "--vllm-url",
            vllm_server.url,
        ],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    report = output.read_text(encoding="utf-8")
    assert report.strip() == completed.stdout.strip()
    assert report.startswith("## Generation: embedded vLLM CPU against in-process transformers")
    assert "python -m benchmarks.generation_bench --quick --output" in report
    assert vllm_server.is_running()
    for heading in ("### One request at a time", "### 2 requests at once", "### Ratios"):
        assert heading in report
    assert "| vLLM CPU (embedded) |" in report
    assert "| transformers `generate()` |" in report
    assert "every answer is exactly 8 tokens" in report
