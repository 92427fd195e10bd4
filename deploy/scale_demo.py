"""Several machines' worth of PrivateGPT++ on loopback, without Docker (`make scale-demo`).

HAProxy in front of N api/ui pairs (sessions pinned by a stick table, deploy/haproxy.py),
the api replicas calling vllm-router, which keeps each conversation on one of M vLLM
replicas (``consistent_hash`` on the ``X-Session-ID`` header: a keyed hash of the session
id, serving/vllm_client.py). The tests start the same cluster with fake vLLM servers.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from core.settings import Settings, load_settings
from deploy.haproxy import Listen, Pair, render
from serving.launcher import EmbeddedVLLM, signal_group
from serving.stack import Child, ui_command

LOOPBACK = "127.0.0.1"
PEER_NAME = "pgpt-proxy"
READY_TIMEOUT_S = 120.0
POLL_S = 0.2
# A dead vLLM replica leaves the router's ring after this many failed checks (default 60 s).
ROUTER_HEALTH_INTERVAL_S = 2


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def loopback_listen(workdir: Path, *, api_port: int = 0, ui_port: int = 0) -> Listen:
    """HAProxy on loopback (free ports unless given), its socket in ``workdir``."""
    return Listen(
        host=LOOPBACK,
        api_port=api_port or free_port(),
        ui_port=ui_port or free_port(),
        peer_name=PEER_NAME,
        peer_port=free_port(),
        stats_socket=str(workdir / "haproxy.sock"),
        session_ttl_s=load_settings().session_ttl_s,
        resolver=None,
    )


def router_command(host: str, port: int, workers: Sequence[str], metrics_port: int) -> list[str]:
    """vllm-router keeping a conversation on one replica: hash of the X-Session-ID header."""
    return [
        str(Path(sys.executable).with_name("vllm-router")),
        "--host", host,
        "--port", str(port),
        "--worker-urls", *workers,
        "--policy", "consistent_hash",
        "--health-check-interval-secs", str(ROUTER_HEALTH_INTERVAL_S),
        "--health-failure-threshold", "1",
        "--prometheus-host", LOOPBACK,
        "--prometheus-port", str(metrics_port),
        "--log-level", "warning",
    ]  # fmt: skip


def wait_until(url: str, alive: Callable[[], bool], what: str, timeout_s: float) -> None:
    """Poll ``url`` until it answers 200; fail early when ``alive()`` turns false."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"The {what} exited during start-up; see its output above.")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        time.sleep(POLL_S)
    raise RuntimeError(f"The {what} did not answer at {url} within {timeout_s:.0f} s.")


@dataclass
class ApiPair:
    pair: Pair
    api: Child
    ui: Child | None

    @property
    def api_url(self) -> str:
        return f"http://{self.pair.api}"


@dataclass
class VLLMReplica:
    url: str
    process: EmbeddedVLLM | Child

    def is_running(self) -> bool:
        return self.process.is_running()

    def stop(self) -> None:
        self.process.stop()

    def kill(self) -> None:
        """SIGKILL the replica's whole process group, as a crash would."""
        if isinstance(self.process, EmbeddedVLLM):
            pid = self.process.pid
        else:
            pid = self.process.process.pid if self.process.process else None
        if pid is not None:
            signal_group(pid, signal.SIGKILL)


@dataclass
class ScaleCluster:
    """The cluster's processes. ``vllm_command`` stands a fake in for vLLM (tests);
    ``None`` runs the embedded vLLM CPU server."""

    settings: Settings
    workdir: Path
    vllm_command: Callable[[str, int], list[str]] | None = None
    with_ui: bool = True
    env: dict[str, str] = field(default_factory=dict)
    listen: Listen = field(default_factory=Listen)
    pairs: list[ApiPair] = field(default_factory=list)
    vllms: list[VLLMReplica] = field(default_factory=list)
    router: Child | None = None
    router_url: str = ""
    router_metrics_url: str = ""
    haproxy: Child | None = None

    @property
    def api_url(self) -> str:
        return f"http://{self.listen.host}:{self.listen.api_port}"

    @property
    def ui_url(self) -> str:
        return f"http://{self.listen.host}:{self.listen.ui_port}"

    # --- vLLM tier ---------------------------------------------------------

    def start_vllm(self, count: int) -> None:
        for _ in range(count):
            port = free_port()
            if self.vllm_command is None:
                server = EmbeddedVLLM(self.settings, host=LOOPBACK, port=port, verbose=False)
                server.launch()
                self.vllms.append(VLLMReplica(server.url, server))
            else:
                child = Child("fake vLLM", self.vllm_command(LOOPBACK, port), self._env())
                child.launch()
                self.vllms.append(VLLMReplica(f"http://{LOOPBACK}:{port}", child))
        timeout = self.settings.vllm_startup_timeout_s
        for replica in self.vllms:
            wait_until(f"{replica.url}/health", replica.is_running, "vLLM replica", timeout)
        port, metrics = free_port(), free_port()
        workers = [replica.url for replica in self.vllms]
        self.router = Child(
            "vllm-router", router_command(LOOPBACK, port, workers, metrics), self._env()
        )
        self.router.launch()
        self.router_url = f"http://{LOOPBACK}:{port}"
        self.router_metrics_url = f"http://{LOOPBACK}:{metrics}/metrics"
        wait_until(f"{self.router_url}/health", self.router.is_running, "router", READY_TIMEOUT_S)

    # --- api/ui tier -------------------------------------------------------

    def _env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, **self.env, **extra}

    def _launch_pair(self) -> ApiPair:
        server_id = max((p.pair.server_id for p in self.pairs), default=0) + 1
        name = f"api{server_id}"
        api_port, ui_port = free_port(), free_port()
        pair = Pair(name, f"{LOOPBACK}:{api_port}", f"{LOOPBACK}:{ui_port}", server_id)
        api_env = self._env(
            PGPT_API_HOST=LOOPBACK,
            PGPT_API_PORT=str(api_port),
            PGPT_REPLICA_ID=name,
            PGPT_VLLM_URL=self.router_url,
        )
        api = Child(f"API server {name}", [sys.executable, "-m", "serving.cli", "serve"], api_env)
        api.launch()
        ui = None
        if self.with_ui:
            update = {"api_host": LOOPBACK, "ui_port": ui_port}
            ui_settings = self.settings.model_copy(update=update)
            ui_env = self._env(PGPT_API_URL=f"http://{pair.api}", PGPT_UI_PORT=str(ui_port))
            ui = Child(f"web UI {name}", ui_command(ui_settings), ui_env)
            ui.launch()
        return ApiPair(pair, api, ui)

    def _wait_pair(self, pair: ApiPair) -> None:
        wait_until(f"{pair.api_url}/healthz", pair.api.is_running, pair.api.name, READY_TIMEOUT_S)
        if pair.ui is not None:
            url = f"http://{pair.pair.ui}/_stcore/health"
            wait_until(url, pair.ui.is_running, pair.ui.name, READY_TIMEOUT_S)

    def start_pairs(self, count: int) -> None:
        launched = []
        for _ in range(count):
            launched.append(self._launch_pair())
            self.pairs.append(launched[-1])
        for pair in launched:
            self._wait_pair(pair)

    # --- the proxy ---------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.workdir / "haproxy.cfg"

    def write_config(self) -> None:
        self.config_path.write_text(render([p.pair for p in self.pairs], self.listen))

    def start_proxy(self) -> None:
        self.write_config()
        haproxy = shutil.which("haproxy")
        if haproxy is None:
            raise RuntimeError("HAProxy is not installed: run `make setup-proxy`.")
        # -W: master-worker, so SIGUSR2 reloads; -L: the peer that hands the table over.
        argv = [haproxy, "-W", "-db", "-f", str(self.config_path), "-L", self.listen.peer_name]
        self.haproxy = Child("HAProxy", argv, self._env())
        self.haproxy.launch()
        self.wait_servers_up()

    def reload_proxy(self) -> None:
        """Re-read the config; the stick table moves to the new worker through `peers`."""
        assert self.haproxy is not None and self.haproxy.process is not None
        self.write_config()
        self.wait_peers_resynced()
        self.haproxy.process.send_signal(signal.SIGUSR2)
        self.wait_servers_up()

    def wait_peers_resynced(self) -> None:
        """Until the running worker has finished its own start-up resync: a worker hands
        its stick table to the next one only after that (up to 5 s from its start), so a
        reload sooner would start the new worker with an empty table (every session 404)."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if "resync_timeout=<PAST>" in self.proxy_command("show peers"):
                return
            time.sleep(POLL_S)
        raise RuntimeError("HAProxy's peers did not finish their resync within the time limit.")

    def wait_servers_up(self) -> None:
        """Until every running pair's api is UP in HAProxy's eyes."""
        assert self.haproxy is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        wanted = {p.pair.name for p in self.pairs if p.api.is_running()}
        while time.monotonic() < deadline:
            if not self.haproxy.is_running():
                raise RuntimeError("HAProxy exited; see its output above.")
            if wanted <= self.servers_up():
                return
            time.sleep(POLL_S)
        raise RuntimeError(f"HAProxy did not see {sorted(wanted)} up within the time limit.")

    def servers_up(self) -> set[str]:
        """The api servers HAProxy's health checks see up (empty before it listens)."""
        try:
            reply = self.proxy_command("show stat")
        except OSError:
            return set()
        up = set()
        for line in reply.splitlines():
            cells = line.split(",")
            if len(cells) > 17 and cells[0] == "api" and cells[17].startswith("UP"):
                up.add(cells[1])
        return up

    def proxy_command(self, command: str) -> str:
        """One command on HAProxy's stats socket (the runtime API)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5.0)
            sock.connect(self.listen.stats_socket)
            sock.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    # --- scaling -----------------------------------------------------------

    def add_pair(self) -> ApiPair:
        """Start one more api/ui pair and reload HAProxy with it."""
        pair = self._launch_pair()
        self.pairs.append(pair)
        self._wait_pair(pair)
        self.reload_proxy()
        return pair

    def remove_pair(self, name: str) -> None:
        """Stop one pair (its sessions are gone) and reload HAProxy without it."""
        pair = next(p for p in self.pairs if p.pair.name == name)
        self.pairs.remove(pair)
        if self.haproxy is not None:
            self.reload_proxy()
        self._stop_pair(pair)

    def kill_api(self, name: str) -> None:
        """SIGKILL one api replica, as a crash would."""
        pair = next(p for p in self.pairs if p.pair.name == name)
        assert pair.api.process is not None
        pair.api.process.kill()
        pair.api.process.wait(timeout=10)

    # --- whole cluster -----------------------------------------------------

    def start(self, *, pairs: int, vllm_replicas: int) -> None:
        try:
            self.start_vllm(vllm_replicas)
            self.start_pairs(pairs)
            self.start_proxy()
        except BaseException:
            self.stop()
            raise

    def _stop_pair(self, pair: ApiPair) -> None:
        if pair.ui is not None:
            pair.ui.stop()
        pair.api.stop()

    def stop(self) -> None:
        if self.haproxy is not None:
            self.haproxy.stop()
        for pair in self.pairs:
            self._stop_pair(pair)
        if self.router is not None:
            self.router.stop()
        for replica in self.vllms:
            replica.stop()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2, help="api/ui pairs behind HAProxy")
    parser.add_argument("--vllm", type=int, default=2, help="embedded vLLM replicas")
    parser.add_argument("--api-port", type=int, default=8000, help="HAProxy's API port")
    parser.add_argument("--ui-port", type=int, default=8501, help="HAProxy's UI port")
    args = parser.parse_args(argv)
    settings = load_settings()
    with tempfile.TemporaryDirectory(prefix="pgpt-scale-") as workdir:
        listen = loopback_listen(Path(workdir), api_port=args.api_port, ui_port=args.ui_port)
        cluster = ScaleCluster(settings, Path(workdir), listen=listen)
        requests: list[int] = []  # SIGUSR1: add a pair; SIGUSR2: remove the newest
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        signal.signal(signal.SIGUSR1, lambda signum, _: requests.append(signum))
        signal.signal(signal.SIGUSR2, lambda signum, _: requests.append(signum))
        try:
            print(f"Starting {args.vllm} vLLM replicas and vllm-router ...", file=sys.stderr)
            cluster.start(pairs=args.pairs, vllm_replicas=args.vllm)
            print(
                f"\nReady: UI {cluster.ui_url}  API {cluster.api_url}\n"
                f"HAProxy config {cluster.config_path}, runtime API {listen.stats_socket}\n"
                f"kill -USR1 {os.getpid()} adds an api/ui pair, kill -USR2 {os.getpid()} "
                "removes the newest; Ctrl-C stops.\n",
                file=sys.stderr,
            )
            while True:
                while requests:
                    if requests.pop(0) == signal.SIGUSR1:
                        added = cluster.add_pair()
                        print(f"Added {added.pair.name} ({added.api_url}).", file=sys.stderr)
                    elif len(cluster.pairs) > 1:
                        name = cluster.pairs[-1].pair.name
                        cluster.remove_pair(name)
                        print(f"Removed {name}; its sessions are gone.", file=sys.stderr)
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
