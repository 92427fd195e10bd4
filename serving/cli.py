"""The ``pgpt`` command line."""

from __future__ import annotations

import click

from core.errors import PGPTError


@click.group()
def main() -> None:
    """PrivateGPT++: private document question answering."""


@main.command("vllm")
@click.option("--host", default=None, help="Listen address [default: PGPT_VLLM_HOST or 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port [default: PGPT_VLLM_PORT or 8001].")
@click.option(
    "--prepare-only", is_flag=True, help="Only convert the bundled model into the cache, then exit."
)
def vllm_command(host: str | None, port: int | None, prepare_only: bool) -> None:
    """Run the embedded vLLM CPU server in the foreground until Ctrl-C."""
    import os
    import signal
    import time

    from core.settings import load_settings
    from serving.launcher import EmbeddedVLLM, prepare_model

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        settings = load_settings()
        if settings.vllm_url:
            raise click.ClickException(
                f"An external vLLM server is configured (PGPT_VLLM_URL={settings.vllm_url}); "
                "nothing to run here. Unset PGPT_VLLM_URL to use the embedded server."
            )
        model_path = prepare_model(settings)
        click.echo(f"Model ready in {model_path}", err=True)
        if prepare_only:
            return

        def _terminate(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        # SIGTERM (docker stop, kill) takes the same clean path as Ctrl-C.
        signal.signal(signal.SIGTERM, _terminate)
        server = EmbeddedVLLM(settings, host=host, port=port, model_path=model_path)
        click.echo(f"Starting vLLM on {server.url} ...", err=True)
        try:
            with server:
                click.echo(f"vLLM is ready on {server.url} (Ctrl-C to stop).", err=True)
                while server.is_running():
                    time.sleep(1.0)
                raise click.ClickException(
                    f"vLLM exited unexpectedly. Last output:\n{server.output_tail()}"
                )
        except KeyboardInterrupt:
            click.echo("vLLM stopped.", err=True)
    except PGPTError as exc:
        raise click.ClickException(exc.message) from None
