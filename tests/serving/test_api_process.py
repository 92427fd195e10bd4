"""The API's helper processes never outlive it, however it ends."""

from __future__ import annotations

import signal

import pytest

from tests.privacy.servers import Sandbox, free_port, start_api


@pytest.mark.slow  # starts the API as a subprocess server
def test_a_sigkilled_api_leaves_no_parser_process_behind(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    sandbox = Sandbox.create(tmp_path_factory.mktemp("api-kill"))
    api = start_api(sandbox, free_port(), generator_ready=False)
    commands = [" ".join(p.cmdline()) for p in api.family()]
    # Warmed at start: the forkserver and its parser workers are there before any upload.
    assert sum("multiprocessing.forkserver" in c for c in commands) >= 2
    assert api.stop(signal.SIGKILL) == []
