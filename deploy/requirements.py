"""Prints pyproject.toml's dependencies, plus those of the extras named as arguments.

The image build installs them in a layer of their own, before the sources are copied, so
a change of the sources does not reinstall every dependency:

    python deploy/requirements.py embedded > /tmp/requirements.txt
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path


def requirements(pyproject: Path, extras: list[str]) -> list[str]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    optional = project.get("optional-dependencies", {})
    unknown = [extra for extra in extras if extra not in optional]
    if unknown:
        raise SystemExit(f"{pyproject}: no such extra {unknown}; known: {sorted(optional)}")
    return [*project["dependencies"], *(dep for extra in extras for dep in optional[extra])]


if __name__ == "__main__":
    print("\n".join(requirements(Path("pyproject.toml"), sys.argv[1:])))
