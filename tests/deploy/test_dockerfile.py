"""Invariants of the Dockerfile and .dockerignore, read as text.

The image itself is built and run by `make image-test` (deploy/image_test.py) where a Docker
daemon runs; these checks run everywhere.
"""

from __future__ import annotations

import os
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
DOCKERIGNORE = PROJECT_ROOT / ".dockerignore"
FINAL_TARGETS = ("cpu", "cuda")
GUARD = "/app/deploy/entrypoint.sh"


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for key, args in self.instructions if key == keyword]


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: dict[str, Stage]

    def chain(self, name: str) -> list[Stage]:
        """The stage and the stages it is built FROM, nearest first."""
        result = [self.stages[name]]
        while result[-1].base in self.stages:
            result.append(self.stages[result[-1].base])
        return result

    def effective(self, name: str, keyword: str) -> str | None:
        """The last value of an inherited instruction (USER, ENTRYPOINT, HEALTHCHECK...)."""
        for stage in self.chain(name):
            values = stage.all(keyword)
            if values:
                return values[-1]
        return None

    def env(self, name: str) -> dict[str, str]:
        values: dict[str, str] = {}
        for stage in reversed(self.chain(name)):
            for args in stage.all("ENV"):
                for pair in shlex.split(args):
                    key, _, value = pair.partition("=")
                    values[key] = value
        return values


def parse_dockerfile(text: str) -> Dockerfile:
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # comments inside a continued instruction are dropped by docker too
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    global_args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            parts = args.split()
            assert len(parts) == 3 and parts[1].upper() == "AS", f"name every stage: {line}"
            current = Stage(name=parts[2], base=parts[0])
            stages[current.name] = current
        elif current is None:
            assert keyword == "ARG", f"only ARG may precede the first FROM: {line}"
            name, _, value = args.partition("=")
            global_args[name] = value.strip('"')
        else:
            current.instructions.append((keyword, args))
    return Dockerfile(global_args, stages)


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def test_cpu_and_cuda_targets_exist(dockerfile: Dockerfile) -> None:
    assert set(FINAL_TARGETS) <= set(dockerfile.stages)
    # The last stage is what a plain `docker build .` produces: the one that runs anywhere.
    assert list(dockerfile.stages)[-1] == "cpu"


@pytest.mark.parametrize("target", FINAL_TARGETS)
def test_final_targets_run_as_a_non_root_user(dockerfile: Dockerfile, target: str) -> None:
    user = dockerfile.effective(target, "USER")
    assert user, f"{target}: no USER, so it would run as root"
    assert user.split(":")[0] not in ("root", "0")
    # Set in the target itself, so a reordering of stages cannot silently drop it.
    assert dockerfile.stages[target].all("USER")


@pytest.mark.parametrize("target", FINAL_TARGETS)
def test_final_targets_have_a_healthcheck(dockerfile: Dockerfile, target: str) -> None:
    healthcheck = dockerfile.effective(target, "HEALTHCHECK")
    assert healthcheck and "/app/deploy/healthcheck.py" in healthcheck


@pytest.mark.parametrize("target", FINAL_TARGETS)
def test_final_targets_start_behind_the_exposure_guard(dockerfile: Dockerfile, target: str) -> None:
    assert dockerfile.effective(target, "ENTRYPOINT") == f'["{GUARD}"]'
    copies = " ".join(args for stage in dockerfile.chain(target) for args in stage.all("COPY"))
    assert "deploy/entrypoint.sh" in copies
    assert os.access(PROJECT_ROOT / "deploy" / "entrypoint.sh", os.X_OK)


def test_commands_match_the_compose_services(dockerfile: Dockerfile) -> None:
    assert (
        dockerfile.effective("cuda", "CMD")
        == '["pgpt", "serve", "--host", "0.0.0.0", "--port", "8000"]'
    )
    assert dockerfile.effective("cpu", "CMD") == '["pgpt", "up"]'


def test_torch_is_pinned_to_the_pyproject_version(dockerfile: Dockerfile) -> None:
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pins = [d for d in pyproject["project"]["dependencies"] if d.startswith("torch==")]
    assert pins == [f"torch=={dockerfile.global_args['TORCH_VERSION']}"]
    assert dockerfile.global_args["TORCH_VERSION"] == "2.13.0"


def test_no_syntax_directive_is_needed() -> None:
    """A `# syntax=` line makes BuildKit fetch a frontend image: no registry, no build."""
    first = DOCKERFILE.read_text(encoding="utf-8").splitlines()[0]
    assert not re.match(r"#\s*syntax\s*=", first)


def test_base_image_is_a_build_argument(dockerfile: Dockerfile) -> None:
    assert dockerfile.global_args["PYTHON_IMAGE"] == "python:3.11-slim-bookworm"
    bases = {stage.base for stage in dockerfile.stages.values()} - set(dockerfile.stages)
    assert bases == {"${PYTHON_IMAGE}"}


def test_cpu_build_uses_cpu_torch_and_the_embedded_extra(dockerfile: Dockerfile) -> None:
    runs = " ".join(stage_run for s in dockerfile.chain("build-cpu") for stage_run in s.all("RUN"))
    assert '--index-url "${TORCH_INDEX_BASE}/cpu"' in runs
    assert '"torch==${TORCH_VERSION}+cpu"' in runs
    assert dockerfile.global_args["TORCH_INDEX_BASE"] == "https://download.pytorch.org/whl"
    assert "python /tmp/requirements.py embedded" in runs
    assert '--no-deps -e ".[embedded]"' in runs
    assert "pgpt vllm --prepare-only" in runs
    assert any("--from=build-cpu" in c for c in dockerfile.stages["cpu"].all("COPY"))


def test_cuda_build_uses_one_cuda_for_torch_and_faiss(dockerfile: Dockerfile) -> None:
    """FAISS requires torch and faiss to link the same CUDA: PyPI's faiss-gpu 1.15 is a
    CUDA 12 build (nvidia-cuda-runtime-cu12), so torch must be a cu12x build."""
    runs = " ".join(dockerfile.stages["build-cuda"].all("RUN"))
    assert '--index-url "${TORCH_INDEX_BASE}/${TORCH_CUDA}"' in runs
    assert '"torch==${TORCH_VERSION}+${TORCH_CUDA}"' in runs
    assert re.fullmatch(r"cu12\d", dockerfile.global_args["TORCH_CUDA"])
    assert dockerfile.global_args["FAISS_GPU_REQUIREMENT"] == "faiss-gpu>=1.15,<1.16"
    assert "pip uninstall -y faiss-cpu" in runs
    # The build fails unless both import with one CUDA major version.
    assert runs.endswith("python /app/deploy/cuda_check.py --require-cuda")
    assert any("--from=build-cuda" in c for c in dockerfile.stages["cuda"].all("COPY"))
    assert "embedded" not in runs  # no vLLM CPU build in the GPU image


def test_dependencies_are_installed_before_the_sources_are_copied(dockerfile: Dockerfile) -> None:
    """A change of the sources must not reinstall vLLM and torch's dependencies."""
    for name in ("build-cpu", "build-cuda"):
        order = [
            args
            for keyword, args in dockerfile.stages[name].instructions
            if keyword in ("RUN", "COPY")
        ]
        requirements = next(i for i, a in enumerate(order) if "-r /tmp/requirements.txt" in a)
        sources = next(i for i, a in enumerate(order) if a.startswith("core "))
        assert requirements < sources, name


@pytest.mark.parametrize("target", FINAL_TARGETS)
def test_runtime_never_contacts_the_hub(dockerfile: Dockerfile, target: str) -> None:
    env = dockerfile.env(target)
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["TRANSFORMERS_OFFLINE"] == "1"
    assert env["HOME"] == "/tmp"  # the only writable place under read_only: true


def test_no_volume_no_add_no_remote_content(dockerfile: Dockerfile) -> None:
    for stage in dockerfile.stages.values():
        keywords = {keyword for keyword, _ in stage.instructions}
        assert "VOLUME" not in keywords, f"{stage.name}: a VOLUME could end up holding documents"
        assert "ADD" not in keywords, f"{stage.name}: use COPY (ADD fetches URLs and unpacks)"


def copied_sources(dockerfile: Dockerfile) -> list[str]:
    """Build-context paths that COPY instructions read (not --from=stage copies)."""
    sources: list[str] = []
    for stage in dockerfile.stages.values():
        for args in stage.all("COPY"):
            parts = args.split()
            if any(p.startswith("--from=") for p in parts):
                continue
            sources.extend(p for p in parts[:-1] if not p.startswith("--"))
    return sources


# --- .dockerignore ---------------------------------------------------------------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def is_in_build_context(path: str) -> bool:
    """docker's rule: the last pattern matching the path or one of its parents decides."""
    rules = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            negated = line.startswith("!")
            rules.append((negated, _pattern_regex(line.lstrip("!").strip("/"))))
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    included = True
    for negated, regex in rules:
        if any(regex.fullmatch(candidate) for candidate in candidates):
            included = negated
    return included


@pytest.mark.parametrize(
    "path",
    [
        ".env",
        ".env.production",
        ".venv/lib/python3.11/site-packages/torch/__init__.py",
        ".git/config",
        "tests/conftest.py",
        "benchmarks/run_all.py",
        "docs/deploy.md",
        "notes.txt",
        "contract.pdf",
        "uploads/contract.pdf",
        "../shared/data/pdfs/attention-is-all-you-need.pdf",
        "core/leftover.pdf",
        "rag/notes.md",
        "ingest/sample.txt",
        "serving/.env",
        ".streamlit/secrets.toml",
        "core/__pycache__/settings.cpython-311.pyc",
    ],
)
def test_documents_and_secrets_never_enter_the_build_context(path: str) -> None:
    assert not is_in_build_context(path.removeprefix("../"))


def test_everything_the_dockerfile_copies_is_in_the_build_context(dockerfile: Dockerfile) -> None:
    sources = copied_sources(dockerfile)
    assert {"pyproject.toml", "core", "ingest", "rag", "serving", "ui", "*.py"} <= set(sources)
    assert {"deploy/cuda_check.py", "deploy/requirements.py"} <= set(sources)
    for source in sources:
        assert is_in_build_context(source), f"COPY {source} is excluded by .dockerignore"
    assert is_in_build_context("core/settings.py")
    assert is_in_build_context("README.md")  # pyproject's readme
    # app.py, the UI's entry, is a top-level module: every one goes in.
    for module in PROJECT_ROOT.glob("*.py"):
        assert is_in_build_context(module.name), module.name
