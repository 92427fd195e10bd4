"""16 concurrent clients against one real deployment: no server error, nothing lost.

A shorter run of benchmarks/load_bench.py (15 s instead of 60) against the sandboxed
`pgpt vllm` + `pgpt serve` of this folder. Latencies are reported by the benchmark
(docs/benchmarks/load.md), never asserted here.
"""

from __future__ import annotations

import pytest

from benchmarks.load_bench import OPERATIONS, LoadConfig, run_load
from tests.privacy.servers import LocalStack


@pytest.mark.vllm
def test_sixteen_clients_mixing_uploads_searches_and_questions(local_stack: LocalStack) -> None:
    report = run_load(local_stack.api_url, LoadConfig(clients=16, duration_s=15))
    assert report.client_errors == []
    assert [(s.operation, s.status, s.detail) for s in report.server_errors] == []
    assert [(s.operation, s.status, s.detail) for s in report.refusals] == []
    assert report.lost_documents == []
    assert report.foreign_passages == 0
    done = {s.operation for s in report.samples}
    assert set(OPERATIONS) <= done
    assert report.documents >= 16
