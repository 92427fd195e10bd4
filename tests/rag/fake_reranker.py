"""A fake vLLM rerank server on loopback, for the reranker client's tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeRerankServer:
    """vLLM's /v1/rerank API on loopback; ``score(query, document)`` by default counts
    the word 'good' in the document."""

    def __init__(
        self,
        *,
        status: int = 200,
        score: Callable[[str, str], float] = lambda query, document: document.count("good"),
    ) -> None:
        self.requests: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append({"path": self.path, **body})
                results = [
                    {"index": i, "relevance_score": float(score(body["query"], doc))}
                    for i, doc in enumerate(body["documents"])
                ]
                payload = json.dumps({"results": results}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FakeRerankServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
