"""``pgpt up``: the embedded default (vLLM CPU + API + UI) as one supervised process tree."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import click
import httpx

from core.errors import GeneratorUnavailableError
from core.settings import Settings
from serving.launcher import EmbeddedVLLM, die_with_parent, stop_process_tree
from ui import PAGE_PATH

STOP_TIMEOUT_S = 20.0
VLLM_READY_MESSAGE = "vLLM is ready"


class Child:
    """A child process in its own process group, stopped with everything it started."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.process = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )

    def is_running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        stop_process_tree(self.process, STOP_TIMEOUT_S)


def wait_for(url: str, child: Child, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not child.is_running():
            raise click.ClickException(f"The {child.name} exited during start-up; see above.")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        time.sleep(0.5)
    raise click.ClickException(f"The {child.name} did not answer at {url} in {timeout_s:.0f} s.")


def run_stack(settings: Settings, *, verbose: bool = False) -> None:
    """Start everything, print the URL, and stop it all on Ctrl-C, SIGTERM or a child's death.

    vLLM prints only warnings and errors unless ``verbose``; one line says when it is ready.
    """

    def on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    vllm = None if settings.vllm_url else EmbeddedVLLM(settings, verbose=verbose)
    vllm_url = settings.vllm_url or (vllm.url if vllm else "")
    api_url = f"http://{settings.api_host}:{settings.api_port}"
    env = {**os.environ, "PGPT_VLLM_URL": vllm_url, "PGPT_API_URL": api_url}
    children: list[Child] = []
    try:
        children.append(
            Child(
                "API server",
                [sys.executable, "-m", "serving.cli", "serve"],
                env,
            )
        )
        children.append(
            Child(
                "web UI",
                [
                    sys.executable, "-m", "streamlit", "run", str(PAGE_PATH),
                    "--server.address", settings.api_host,
                    "--server.port", str(settings.ui_port),
                    "--server.headless", "true",
                    "--browser.gatherUsageStats", "false",
                    "--client.toolbarMode", "minimal",
                    # A watcher would re-run the page on source edits and, watching every
                    # folder below the app (a .venv too), exhaust the inotify watches.
                    "--server.fileWatcherType", "none",
                ],
                env,
            )
        )  # fmt: skip
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
        wait_for(f"{api_url}/healthz", children[0], timeout_s=120)
        ui_url = f"http://{settings.api_host}:{settings.ui_port}"
        wait_for(f"{ui_url}/_stcore/health", children[1], timeout_s=60)
        click.echo(f"\nPrivateGPT++ is ready: {ui_url}  (API {api_url}/docs; Ctrl-C stops)\n")
        while all(child.is_running() for child in children) and (vllm is None or vllm.is_running()):
            time.sleep(1.0)
        raise click.ClickException("A component stopped unexpectedly; shutting down.")
    except KeyboardInterrupt:
        click.echo("\nStopping ...", err=True)
    finally:
        for child in reversed(children):
            child.stop()
        if vllm is not None:
            vllm.stop()
        click.echo("Stopped.", err=True)
