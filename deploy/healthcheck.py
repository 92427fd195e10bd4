"""Container health probe: exit 0 when a URL answers 2xx, else 1.

Used by the Dockerfile HEALTHCHECK and docker-compose.yml, because the slim image has no
curl. Without an argument it probes the REST API's /healthz on PGPT_API_PORT (default 8000).
Standard library only, so it runs in any image that has Python.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_S = 4.0


def default_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('PGPT_API_PORT', '8000')}/healthz"


def is_healthy(url: str, timeout_s: float = TIMEOUT_S) -> bool:
    """True when ``url`` answers with a 2xx status within ``timeout_s`` seconds."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"health check URL must be http(s), got {url!r}")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError):  # HTTPError (non-2xx) is a URLError
        return False


def main(argv: list[str]) -> int:
    url = argv[1] if len(argv) > 1 else default_url()
    if is_healthy(url):
        return 0
    print(f"unhealthy: {url}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
