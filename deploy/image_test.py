"""`make image-test`: build the `cpu` image and run it the way docker-compose.yml runs the api.

    python -m deploy.image_test [--docker /usr/bin/docker] [--base-image IMAGE]
                                [--build-arg NAME=VALUE ...] [--skip-build]

1. builds the `cpu` target (BuildKit, `--network host` so the build reaches the package index);
2. runs `pgpt serve` from it with the api service's hardening, read from
   `docker compose config` (read-only root, tmpfs /tmp, no capabilities, no-new-privileges,
   no core dumps, no swap, bounded logs, init), published on loopback only;
3. checks /healthz, an upload and a search through the REST API;
4. checks that `docker diff` shows nothing written to the container's filesystem;
5. runs the image's own command, `pgpt up`, until the API reports a ready generator.

Where no Docker daemon answers it prints why and exits 0 (CI has none): it is a pre-flight
check for an operator's machine, not a unit test. Every container it starts is removed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PDF = PROJECT_ROOT.parent / "shared" / "data" / "pdfs" / "crazyones.pdf"
API_START_TIMEOUT_S = 300.0
UP_READY_TIMEOUT_S = 1200.0
LOOPBACK = "127.0.0.1"


# `--init` makes Docker bind-mount its init binary here; the mount point (and the folders
# above it) show in `docker diff` although nothing in the container wrote them.
DOCKER_INIT_MOUNT = "/usr/sbin/docker-init"


class ImageTestError(Exception):
    pass


def written_paths(docker_diff: str) -> list[str]:
    """`docker diff` lines left once Docker's own init mount point is set aside."""
    docker_owned = {DOCKER_INIT_MOUNT, *(str(p) for p in Path(DOCKER_INIT_MOUNT).parents)}
    return [
        line
        for line in docker_diff.splitlines()
        if line.strip() and line.split(maxsplit=1)[-1] not in docker_owned
    ]


def log(message: str) -> None:
    print(f"[image-test] {message}", flush=True)


def run(argv: list[str], *, timeout: float = 60.0, check: bool = True) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise ImageTestError(f"{' '.join(argv[:3])} ... failed:\n{result.stderr.strip()}")
    return result.stdout


def daemon_problem(docker: str) -> str | None:
    """Why no Docker daemon can be used, or None when one answers."""
    try:
        result = subprocess.run(
            [docker, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`{docker} info` could not run ({exc})"
    if result.returncode != 0 or not result.stdout.strip():
        return f"`{docker} info` found no daemon: {result.stderr.strip()[:300]}"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def api_service() -> dict[str, Any]:
    """The api service as Docker Compose resolves it with every default (no .env)."""
    import compose

    binary = Path(compose.__file__).with_name("docker-compose")
    with tempfile.TemporaryDirectory() as empty:
        output = run(
            [
                str(binary),
                "-f",
                str(PROJECT_ROOT / "docker-compose.yml"),
                "--project-directory",
                empty,
                "config",
                "--format",
                "json",
            ]
        )
    service: dict[str, Any] = json.loads(output)["services"]["api"]
    return service


def hardening_flags(service: dict[str, Any]) -> list[str]:
    """`docker run` flags for the service's hardening: the same limits compose applies."""
    flags: list[str] = []
    if service.get("read_only"):
        flags.append("--read-only")
    for mount in service.get("tmpfs") or []:
        flags += ["--tmpfs", str(mount)]
    for capability in service.get("cap_drop") or []:
        flags += ["--cap-drop", str(capability)]
    for option in service.get("security_opt") or []:
        flags += ["--security-opt", str(option)]
    for name, limit in (service.get("ulimits") or {}).items():
        soft = limit.get("soft", limit.get("single", 0))
        hard = limit.get("hard", limit.get("single", 0))
        flags += ["--ulimit", f"{name}={soft}:{hard}"]
    if service.get("init"):
        flags.append("--init")
    if service.get("mem_limit"):
        flags += ["--memory", f"{service['mem_limit']}b"]
    if service.get("memswap_limit"):
        flags += ["--memory-swap", f"{service['memswap_limit']}b"]
    logging = service.get("logging") or {}
    if logging.get("driver"):
        flags += ["--log-driver", str(logging["driver"])]
    for key, value in (logging.get("options") or {}).items():
        flags += ["--log-opt", f"{key}={value}"]
    return flags


def wait_until(
    what: str, probe: Callable[[], bool], timeout_s: float, alive: Callable[[], bool]
) -> float:
    """Poll ``probe`` until it is true; the seconds it took. Fails early if ``alive`` is false."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if not alive():
            raise ImageTestError(f"the container stopped while waiting for {what}")
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            if probe():
                return time.monotonic() - started
        time.sleep(2.0)
    raise ImageTestError(f"no {what} within {timeout_s:.0f} s")


class Container:
    """A detached container, removed (with its logs shown on failure) when the block ends."""

    def __init__(self, docker: str, argv: list[str]) -> None:
        self.docker = docker
        self.id = run([docker, "run", "--detach", *argv]).strip()

    def running(self) -> bool:
        state = run([self.docker, "inspect", "--format", "{{.State.Running}}", self.id])
        return state.strip() == "true"

    def logs(self) -> str:
        result = subprocess.run(
            [self.docker, "logs", self.id], capture_output=True, text=True, timeout=60, check=False
        )
        return result.stdout + result.stderr

    def diff(self) -> str:
        return run([self.docker, "diff", self.id])

    def remove(self) -> None:
        run([self.docker, "rm", "--force", self.id], check=False)


@contextlib.contextmanager
def container(docker: str, argv: list[str]) -> Iterator[Container]:
    started = Container(docker, argv)
    try:
        yield started
    except BaseException:
        tail = "\n".join(started.logs().splitlines()[-40:])
        log(f"container output (last 40 lines):\n{tail}")
        raise
    finally:
        started.remove()


def build(docker: str, tag: str, base_image: str | None, build_args: list[str]) -> None:
    argv = [docker, "build", "--network", "host", "--target", "cpu", "--tag", tag]
    if base_image:
        argv += ["--build-arg", f"PYTHON_IMAGE={base_image}"]
    for arg in build_args:
        argv += ["--build-arg", arg]
    argv.append(str(PROJECT_ROOT))
    log("building: " + " ".join(argv[1:]))
    started = time.monotonic()
    # BuildKit skips the stages the target does not need (the CUDA ones).
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    result = subprocess.run(argv, env=env, check=False)
    if result.returncode != 0:
        raise ImageTestError(f"docker build failed (exit {result.returncode}); see above")
    log(f"PASS build of the cpu target ({time.monotonic() - started:.0f} s)")


def check_api(docker: str, tag: str, pdf: Path) -> None:
    service = api_service()
    port = free_port()
    argv = [
        *hardening_flags(service),
        "--publish",
        f"{LOOPBACK}:{port}:8000",
        # What compose gives the api, for a machine without a GPU.
        "--env",
        f"PGPT_BIND={LOOPBACK}",
        "--env",
        "PGPT_EMBEDDING_DEVICE=cpu",
        "--env",
        "PGPT_INDEX_DEVICE=cpu",
        tag,
        *service["command"],
    ]
    log("running the API read-only: docker run " + " ".join(argv))
    api = f"http://{LOOPBACK}:{port}"
    with container(docker, argv) as api_container:
        took = wait_until(
            "healthy API",
            lambda: httpx.get(f"{api}/healthz", timeout=5).json()["status"] == "ok",
            API_START_TIMEOUT_S,
            api_container.running,
        )
        log(f"PASS /healthz answers ok ({took:.0f} s after start)")
        with httpx.Client(base_url=api, timeout=300) as client:
            session = client.post("/v1/sessions")
            session.raise_for_status()
            sid = session.json()["session_id"]
            uploaded = client.post(
                f"/v1/sessions/{sid}/documents",
                files=[("files", (pdf.name, pdf.read_bytes(), "application/pdf"))],
            )
            if uploaded.status_code != 200:
                raise ImageTestError(f"upload answered {uploaded.status_code}: {uploaded.text}")
            log(f"PASS upload of {pdf.name}: {uploaded.json()}")
            found = client.post(
                f"/v1/sessions/{sid}/search", json={"query": "Who are the crazy ones?", "top_k": 3}
            )
            found.raise_for_status()
            results = found.json()["results"]
            if not results or results[0]["filename"] != pdf.name:
                raise ImageTestError(f"search found no passage of {pdf.name}: {found.text}")
            best = results[0]
            log(f"PASS search: {len(results)} passages, best from {pdf.name} p. {best['page']}")
        written = written_paths(api_container.diff())
        if written:
            raise ImageTestError("the container wrote to its filesystem:\n" + "\n".join(written))
        log("PASS docker diff: nothing written (only Docker's own --init mount point)")


def check_pgpt_up(docker: str, tag: str) -> None:
    port = free_port()
    service = api_service()
    # pgpt up as the image runs it by default, with the same hardening (read-only root).
    argv = [
        *hardening_flags(service),
        # vLLM's processes share tensors through /dev/shm (160 MiB here; Docker gives 64 MiB).
        "--shm-size",
        "1g",
        "--publish",
        f"{LOOPBACK}:{port}:8000",
        "--env",
        f"PGPT_BIND={LOOPBACK}",
        # The image's health check allows 10 minutes; a busy shared machine may need them.
        "--env",
        f"PGPT_VLLM_STARTUP_TIMEOUT_S={UP_READY_TIMEOUT_S:.0f}",
        tag,
    ]
    log("running pgpt up (the image's command): docker run " + " ".join(argv))
    api = f"http://{LOOPBACK}:{port}"
    with container(docker, argv) as up:
        took = wait_until(
            "ready generator from pgpt up",
            lambda: (
                httpx.get(f"{api}/healthz", timeout=10).json()["generator"]["status"] == "ready"
            ),
            UP_READY_TIMEOUT_S,
            up.running,
        )
        output = up.logs()
        if "PrivateGPT++ is ready" not in output:
            wait_until(
                "'PrivateGPT++ is ready' in the log",
                lambda: "PrivateGPT++ is ready" in up.logs(),
                120,
                up.running,
            )
        log(f"PASS pgpt up reached ready ({took:.0f} s): generator ready, UI up")
        written = written_paths(up.diff())
        if written:
            raise ImageTestError(
                "pgpt up wrote to the container's filesystem:\n" + "\n".join(written)
            )
        log("PASS docker diff after pgpt up: nothing written (only the --init mount point)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--docker", default=os.environ.get("DOCKER", "docker"))
    parser.add_argument("--tag", default="privategptpp:cpu-image-test")
    parser.add_argument("--base-image", default=os.environ.get("PGPT_BASE_IMAGE"))
    parser.add_argument("--build-arg", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--skip-build", action="store_true", help="Use an already built --tag.")
    parser.add_argument("--pdf", type=Path, default=DEFAULT_PDF)
    args = parser.parse_args(argv)

    problem = daemon_problem(args.docker)
    if problem:
        log(f"SKIPPED: no Docker daemon ({problem}). Start one (docs/deploy.md) to run it.")
        return 0
    try:
        if not args.skip_build:
            build(args.docker, args.tag, args.base_image, args.build_arg)
        check_api(args.docker, args.tag, args.pdf)
        check_pgpt_up(args.docker, args.tag)
    except (ImageTestError, httpx.HTTPError, subprocess.TimeoutExpired) as exc:
        log(f"FAIL: {exc}")
        return 1
    log("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
