"""``pgpt up``: the embedded default (vLLM CPU + API + UI) as one supervised process tree.

The API holds every session in its memory, so its death ends the stack. The vLLM server
and the web UI hold nothing of the user's: when one dies it is restarted with backoff
while the API keeps serving (search still works; questions get 503 with the passages).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import click
import httpx

from core.errors import ConfigError, GeneratorUnavailableError
from core.settings import Settings
from serving.launcher import EmbeddedVLLM, die_with_parent, stop_process_tree
from ui import PAGE_PATH

STOP_TIMEOUT_S = 20.0
POLL_INTERVAL_S = 0.5
RESTART_BACKOFF_FIRST_S = 1.0
RESTART_BACKOFF_MAX_S = 30.0
STABLE_AFTER_S = 120.0  # a component that ran this long starts again from the first backoff
VLLM_READY_MESSAGE = "vLLM is ready"


class Child:
    """A child process in its own process group, stopped with everything it started."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def launch(self) -> None:
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.process.returncode if self.process else None

    def stop(self) -> None:
        if self.process is not None:
            stop_process_tree(self.process, STOP_TIMEOUT_S)


@dataclass
class Restarts:
    """When a dead component may start again: exponential backoff, reset once it was stable."""

    name: str
    launch: Callable[[], None]
    failures: int = 0
    started_at: float = field(default_factory=time.monotonic)
    due_at: float | None = None  # set while a restart is waiting for its backoff

    def on_death(self, returncode: int | None, now: float) -> None:
        if self.due_at is not None:
            return
        if now - self.started_at >= STABLE_AFTER_S:
            self.failures = 0
        delay = min(RESTART_BACKOFF_FIRST_S * 2**self.failures, RESTART_BACKOFF_MAX_S)
        self.failures += 1
        self.due_at = now + delay
        click.echo(
            f"The {self.name} stopped (exit code {returncode}); restarting it in {delay:.0f} s.",
            err=True,
        )

    def restart_if_due(self, now: float) -> None:
        if self.due_at is None or now < self.due_at:
            return
        self.due_at = None
        self.started_at = now
        try:
            self.launch()
        except (ConfigError, GeneratorUnavailableError, OSError) as exc:
            message = getattr(exc, "message", str(exc))
            click.echo(f"Could not restart the {self.name}: {message}", err=True)
            self.on_death(None, now)


def wait_for(url: str, child: Child, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not child.is_running():
            raise click.ClickException(f"The {child.name} exited during start-up; see above.")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        time.sleep(POLL_INTERVAL_S)
    raise click.ClickException(f"The {child.name} did not answer at {url} in {timeout_s:.0f} s.")


def ui_command(settings: Settings) -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(PAGE_PATH),
        "--server.address", settings.api_host,
        "--server.port", str(settings.ui_port),
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "minimal",
    ]  # fmt: skip


def run_stack(settings: Settings, *, verbose: bool = False) -> None:
    """Start everything, print the URL, keep vLLM and the UI alive, stop it all on Ctrl-C,
    SIGTERM or the API's death.

    vLLM prints only warnings and errors unless ``verbose``; one line says when it is ready.
    """

    def on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    vllm = None if settings.vllm_url else EmbeddedVLLM(settings, verbose=verbose)
    vllm_url = settings.vllm_url or (vllm.url if vllm else "")
    api_url = f"http://{settings.api_host}:{settings.api_port}"
    env = {**os.environ, "PGPT_VLLM_URL": vllm_url, "PGPT_API_URL": api_url}
    if vllm is not None:
        # The API then reports an unreachable model as "restarting", not "unavailable".
        env["PGPT_VLLM_SUPERVISED"] = "true"
    api = Child("API server", [sys.executable, "-m", "serving.cli", "serve"], env)
    ui = Child("web UI", ui_command(settings), env)
    try:
        api.launch()
        ui.launch()
        if vllm is not None:
            click.echo(f"Starting the embedded vLLM CPU server on {vllm.url} ...", err=True)
            started = time.monotonic()
            try:
                vllm.start()
            except GeneratorUnavailableError as exc:
                raise click.ClickException(exc.message) from None
            click.echo(
                f"{VLLM_READY_MESSAGE} on {vllm.url} ({time.monotonic() - started:.0f} s).",
                err=True,
            )
        wait_for(f"{api_url}/healthz", api, timeout_s=120)
        ui_url = f"http://{settings.api_host}:{settings.ui_port}"
        wait_for(f"{ui_url}/_stcore/health", ui, timeout_s=60)
        click.echo(f"\nPrivateGPT++ is ready: {ui_url}  (API {api_url}/docs; Ctrl-C stops)\n")
        supervise(api, ui, vllm)
    except KeyboardInterrupt:
        click.echo("\nStopping ...", err=True)
    finally:
        ui.stop()
        api.stop()
        if vllm is not None:
            vllm.stop()
        click.echo("Stopped.", err=True)


def supervise(api: Child, ui: Child, vllm: EmbeddedVLLM | None) -> None:
    """Restart vLLM and the UI when they die; return never, raise when the API dies."""
    watched: list[tuple[Callable[[], bool], Callable[[], int | None], Restarts]] = [
        (ui.is_running, lambda: ui.returncode, Restarts(ui.name, ui.launch))
    ]
    if vllm is not None:
        restarts = Restarts("embedded vLLM server", vllm.launch)
        watched.append((vllm.is_running, lambda: vllm.returncode, restarts))
    while True:
        if not api.is_running():
            raise click.ClickException(
                f"The API server stopped (exit code {api.returncode}). It held every session "
                "in memory, so all uploaded documents are gone; run `make run` again."
            )
        now = time.monotonic()
        for is_running, returncode, restarts in watched:
            if restarts.due_at is None and not is_running():
                restarts.on_death(returncode(), now)
            restarts.restart_if_due(now)
        time.sleep(POLL_INTERVAL_S)
