"""A stand-in for one vLLM replica behind the real vllm-router, in its own process.

It answers what the api calls (``/health``, ``/v1/models``, ``/tokenize``, streamed
``/v1/chat/completions``) with a fixed answer naming the replica, and counts chat
requests per ``X-Session-ID`` header (the api's keyed hash of the session id). ``/metrics``
shows the counts, as vLLM's request counters would:
``pgpt_fake_chat_requests_total{session="<hash>"} 3``.

Run: ``python -m tests.deploy.fake_vllm --port 8001 --name a``
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

MODEL = "fake-llm"
METRIC = "pgpt_fake_chat_requests_total"
_METRIC_LINE = re.compile(METRIC + r'\{session="([^"]*)"\} (\d+)')


def command(host: str, port: int) -> list[str]:
    """How ScaleCluster starts one (``vllm_command``); the port names the replica."""
    return [sys.executable, "-m", "tests.deploy.fake_vllm", "--host", host, "--port", str(port),
            "--name", str(port)]  # fmt: skip


def parse_metrics(text: str) -> Counter[str]:
    """The chat requests per session hash from a ``/metrics`` text."""
    return Counter({key: int(n) for key, n in _METRIC_LINE.findall(text)})


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    name = "?"
    counts: ClassVar[Counter[str]] = Counter()
    lock: ClassVar[threading.Lock] = threading.Lock()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: prompts hold document text."""

    def send_body(self, body: bytes, content_type: str, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, body: object, status: int = 200) -> None:
        self.send_body(json.dumps(body).encode(), "application/json", status)

    def do_GET(self) -> None:
        if self.path == "/health":
            self.send_json({})
        elif self.path == "/v1/models":
            card = {"id": MODEL, "object": "model", "max_model_len": 4096}
            self.send_json({"object": "list", "data": [card]})
        elif self.path == "/metrics":
            with self.lock:
                lines = [f'{METRIC}{{session="{k}"}} {n}\n' for k, n in self.counts.items()]
            self.send_body("".join(lines).encode(), "text/plain")
        else:
            self.send_json({"error": {"message": "not found"}}, 404)

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.path == "/tokenize":
            self.send_json({"count": 50})
        elif self.path == "/v1/chat/completions":
            with self.lock:
                self.counts[self.headers.get("X-Session-ID", "")] += 1
            self.answer(bool(request.get("stream")))
        else:
            self.send_json({"error": {"message": "not found"}}, 404)

    def answer(self, stream: bool) -> None:
        text = f"Answered by replica {self.name}."
        if not stream:
            message = {"role": "assistant", "content": text}
            self.send_json({"choices": [{"index": 0, "message": message}]})
            return
        chunk = {"choices": [{"index": 0, "delta": {"content": text}}]}
        events = f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode()
        self.send_body(events, "text/event-stream")


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake vLLM replica for the scale tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", required=True)
    args = parser.parse_args()
    Handler.name = args.name
    ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
