"""deploy/image_test.py (`make image-test`): its translation of the compose hardening into
`docker run` flags, and its skip where no daemon answers. The image run itself is
`make image-test` on a machine with Docker (docs/deploy.md has the last run)."""

from __future__ import annotations

import pytest

from deploy.image_test import api_service, hardening_flags, main, written_paths


def test_api_hardening_becomes_the_same_docker_run_flags() -> None:
    flags = hardening_flags(api_service())  # from the real `docker compose config`
    pairs = {(flags[i], flags[i + 1]) for i in range(len(flags) - 1)}
    assert "--read-only" in flags and "--init" in flags
    assert ("--tmpfs", "/tmp:size=1g,mode=1777,nosuid,nodev") in pairs
    assert ("--cap-drop", "ALL") in pairs
    assert ("--security-opt", "no-new-privileges:true") in pairs
    assert ("--ulimit", "core=0:0") in pairs
    memory = str(32 * 2**30) + "b"
    assert ("--memory", memory) in pairs and ("--memory-swap", memory) in pairs
    assert ("--log-opt", "max-size=10m") in pairs and ("--log-opt", "max-file=3") in pairs


def test_skips_with_a_clear_message_without_a_daemon(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--docker", "/nonexistent/docker"]) == 0
    out = capsys.readouterr().out
    assert "SKIPPED: no Docker daemon" in out and "/nonexistent/docker" in out


def test_docker_init_mount_point_is_not_a_write() -> None:
    """`--init` adds Docker's init binary as a mount point; anything else is a real write."""
    diff = "C /usr\nC /usr/sbin\nA /usr/sbin/docker-init\n"
    assert written_paths(diff) == []
    assert written_paths(diff + "A /tmp2/upload.pdf\nC /app\n") == ["A /tmp2/upload.pdf", "C /app"]
