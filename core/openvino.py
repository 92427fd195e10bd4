"""OpenVINO, loaded without its telemetry (the int8 embedder runs on it)."""

from __future__ import annotations

import sys
from typing import Any


def load_openvino() -> Any:  # the module; its stubs are partial
    """The ``openvino`` module. Importing it starts the ``openvino_telemetry`` package,
    which writes a client id and usage counts under ~/intel; both OpenVINO and NNCF fall
    back to a stub when that package cannot be imported, so it is blocked first: nothing
    may be written outside the process."""
    sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
    import openvino

    return openvino
