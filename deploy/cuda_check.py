"""Checks that torch and faiss use one CUDA version, and says which.

FAISS requires torch and faiss to link the same CUDA: two CUDA runtimes in one process
is undefined behaviour. The image build runs this after installing both:

    python deploy/cuda_check.py [--require-cuda]

It imports torch and faiss, prints each one's CUDA version and the CUDA runtime libraries
the process has loaded, and exits 1 on a mismatch (or, with --require-cuda, on a CPU build).
It needs no GPU: the libraries load without a driver.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import sys
from dataclasses import dataclass
from pathlib import Path

# The CUDA runtime a wheel links is named by its nvidia-*-cuXX dependency.
_CUDA_RUNTIME_REQUIREMENT = re.compile(r"^nvidia-cuda-runtime-cu(\d+)\b")
# CUDA libraries in /proc/self/maps: libcudart.so.12, libcublas.so.13, libcublasLt.so.12 ...
_CUDA_LIBRARY = re.compile(r"/(libcudart|libcublas|libcublasLt)\.so\.(\d+)")


@dataclass(frozen=True)
class CudaReport:
    torch_version: str
    torch_cuda: str | None  # "12.8", or None for a CPU build
    faiss_version: str
    faiss_distribution: str
    faiss_cuda_major: int | None  # 12, or None for a CPU build
    loaded_libraries: tuple[str, ...]  # e.g. ("libcublas.so.12", "libcudart.so.12")

    def problems(self, *, require_cuda: bool) -> list[str]:
        found: list[str] = []
        torch_major = int(self.torch_cuda.split(".")[0]) if self.torch_cuda else None
        if require_cuda and torch_major is None:
            found.append("torch is a CPU build; install PyTorch's CUDA build.")
        if require_cuda and self.faiss_cuda_major is None:
            found.append(f"faiss ({self.faiss_distribution}) is a CPU build; install faiss-gpu.")
        if torch_major and self.faiss_cuda_major and torch_major != self.faiss_cuda_major:
            found.append(
                f"torch uses CUDA {torch_major} but faiss uses CUDA {self.faiss_cuda_major}; "
                "install builds for the same CUDA (see FAISS_GPU_REQUIREMENT and TORCH_CUDA "
                "in the Dockerfile)."
            )
        majors = sorted({name.rsplit(".", 1)[1] for name in self.loaded_libraries})
        if len(majors) > 1:
            found.append(
                f"CUDA libraries of several versions are loaded at once: "
                f"{', '.join(self.loaded_libraries)}."
            )
        return found

    def lines(self) -> list[str]:
        torch_cuda = f"CUDA {self.torch_cuda}" if self.torch_cuda else "no CUDA (CPU build)"
        faiss_cuda = (
            f"CUDA {self.faiss_cuda_major}" if self.faiss_cuda_major else "no CUDA (CPU build)"
        )
        return [
            f"torch {self.torch_version}: {torch_cuda}",
            f"faiss {self.faiss_version} ({self.faiss_distribution}): {faiss_cuda}",
            "CUDA libraries loaded: " + (", ".join(self.loaded_libraries) or "none"),
        ]


def faiss_cuda_major(distribution: str) -> int | None:
    """The CUDA major version a faiss wheel links, from its nvidia runtime dependency."""
    for requirement in importlib.metadata.requires(distribution) or []:
        match = _CUDA_RUNTIME_REQUIREMENT.match(requirement)
        if match:
            return int(match.group(1))
    return None


def loaded_cuda_libraries(maps: str) -> tuple[str, ...]:
    """CUDA runtime libraries mapped into a process, from the text of /proc/<pid>/maps."""
    return tuple(sorted({f"{m.group(1)}.so.{m.group(2)}" for m in _CUDA_LIBRARY.finditer(maps)}))


def inspect() -> CudaReport:
    import faiss
    import torch

    distributions = importlib.metadata.packages_distributions().get("faiss", [])
    if len(distributions) != 1:
        raise SystemExit(f"expected one installed faiss distribution, found {distributions}")
    distribution = distributions[0]
    return CudaReport(
        torch_version=str(torch.__version__),
        torch_cuda=torch.version.cuda,
        faiss_version=str(faiss.__version__),
        faiss_distribution=distribution,
        faiss_cuda_major=faiss_cuda_major(distribution),
        loaded_libraries=loaded_cuda_libraries(Path("/proc/self/maps").read_text()),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--require-cuda", action="store_true", help="Fail unless both are CUDA builds."
    )
    args = parser.parse_args(argv)
    report = inspect()
    for line in report.lines():
        print(line)
    problems = report.problems(require_cuda=args.require_cuda)
    for problem in problems:
        print(f"ERROR: {problem}", file=sys.stderr)
    if not problems:
        print("OK: torch and faiss agree on CUDA.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
