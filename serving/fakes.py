"""A fake vLLM: the OpenAI-compatible HTTP API our clients call, answering scripted text.

For tests (and a quick local stack) where the real vLLM CPU server is not the point: it
answers at once, holds no model and no core. ``FakeVLLMServer`` serves, on loopback:
``GET /health``, ``GET /v1/models`` (with ``max_model_len``), ``POST /tokenize`` (a count of
the prompt's characters / 4), ``POST /v1/chat/completions`` (streamed or not) with the
replies of a ``rag.fakes.ScriptedGenerator``, and ``POST /v1/rerank`` with ``score(query,
document)``. Every request body is kept in ``requests``. Chat requests are counted per
``X-Session-ID`` header (the api's keyed hash of the session id) and ``GET /metrics`` shows
the counts, as vLLM's request counters would: ``pgpt_fake_chat_requests_total{session="<hash>"} 3``.

Run one as a process (a vLLM replica behind the real vllm-router in the scale tests):
``python -m serving.fakes --port 8001 --name a`` answers "Answered by replica a.".
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rag.fakes import DEFAULT_REPLY, Script, ScriptedGenerator

LOOPBACK = "127.0.0.1"
METRIC = "pgpt_fake_chat_requests_total"
_METRIC_LINE = re.compile(METRIC + r'\{session="([^"]*)"\} (\d+)')


def vllm_command(host: str, port: int) -> list[str]:
    """The command that runs one as a process (ScaleCluster's ``vllm_command``); the port
    names the replica."""
    return [sys.executable, "-m", "serving.fakes", "--host", host, "--port", str(port),
            "--name", str(port)]  # fmt: skip


def parse_metrics(text: str) -> Counter[str]:
    """The chat requests per session hash from a ``/metrics`` text."""
    return Counter({key: int(n) for key, n in _METRIC_LINE.findall(text)})


def count_words(query: str, document: str) -> float:
    """The default rerank score: how often the document says 'good'."""
    return float(document.count("good"))


class FakeVLLMServer:
    """vLLM's HTTP API on a loopback port, in a background thread; a context manager.

    ``status`` other than 200 answers every POST with that status (a failing server);
    ``generator.available`` False answers 503 everywhere, as a server that is still loading.
    """

    def __init__(
        self,
        replies: Script = DEFAULT_REPLY,
        *,
        model: str = "fake-vllm",
        context_length: int = 4096,
        status: int = 200,
        score: Callable[[str, str], float] = count_words,
        host: str = LOOPBACK,
        port: int = 0,
    ) -> None:
        self.generator = ScriptedGenerator(replies, model=model)
        self.generator.context_length = context_length
        self.status = status
        self.score = score
        self.requests: list[dict[str, Any]] = []
        self.chat_requests: Counter[str] = Counter()  # per X-Session-ID header
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeVLLMServer:
        self._thread.start()
        return self

    def serve(self) -> None:
        """Serve in this thread until the process ends (``python -m serving.fakes``)."""
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> FakeVLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the API ---------------------------------------------------------------------

    def answer_get(self, path: str) -> tuple[int, Any]:
        if not self.generator.available:
            return 503, {"error": "loading"}
        if path == "/health":
            return 200, None
        if path == "/v1/models":
            model = {
                "id": self.generator.model,
                "object": "model",
                "max_model_len": self.generator.context_length,
            }
            return 200, {"object": "list", "data": [model]}
        if path == "/metrics":  # text, not JSON
            with self._lock:
                counts = list(self.chat_requests.items())
            return 200, "".join(f'{METRIC}{{session="{k}"}} {n}\n' for k, n in counts)
        return 404, {"error": f"no route {path}"}

    def answer_post(self, path: str, body: dict[str, Any], session: str = "") -> tuple[int, Any]:
        """``session``: the request's X-Session-ID header."""
        with self._lock:
            self.requests.append({"path": path, **body})
            if path == "/v1/chat/completions":
                self.chat_requests[session] += 1
        if not self.generator.available:
            return 503, {"error": "loading"}
        if self.status != 200:
            return self.status, {"error": {"message": "scripted failure"}}
        if path == "/tokenize":
            characters = sum(len(m["content"]) for m in body.get("messages", []))
            return 200, {"count": characters // 4, "max_model_len": self.generator.context_length}
        if path == "/v1/rerank":
            results = [
                {"index": i, "relevance_score": float(self.score(body["query"], document))}
                for i, document in enumerate(body["documents"])
            ]
            return 200, {"results": results}
        if path == "/v1/chat/completions":
            return 200, self.generator.reply(body["messages"])
        return 404, {"error": f"no route {path}"}


def _chunk(model: str, text: str | None) -> bytes:
    delta = {"content": text} if text is not None else {}
    choice = {"index": 0, "delta": delta, "finish_reason": None if text is not None else "stop"}
    payload = {"object": "chat.completion.chunk", "model": model, "choices": [choice]}
    return f"data: {json.dumps(payload)}\n\n".encode()


def _handler(fake: FakeVLLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            status, payload = fake.answer_get(self.path)
            self._send_json(status, payload)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            session = self.headers.get("X-Session-ID", "")
            status, payload = fake.answer_post(self.path, body, session)
            if self.path == "/v1/chat/completions" and status == 200:
                self._send_completion(body, payload)
            else:
                self._send_json(status, payload)

        def _send_json(self, status: int, payload: Any) -> None:
            text = isinstance(payload, str)
            if payload is None:
                data = b""
            else:
                data = payload.encode() if text else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if text else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _send_completion(self, body: dict[str, Any], reply: str) -> None:
            model = fake.generator.model
            if not body.get("stream"):
                message = {"role": "assistant", "content": reply}
                choice = {"index": 0, "message": message, "finish_reason": "stop"}
                self._send_json(200, {"object": "chat.completion", "choices": [choice]})
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True  # the stream ends when the connection does
            words = reply.split(" ")
            cut = fake.generator.fail_after_words
            for index, word in enumerate(words):
                if index == cut:
                    return  # the connection drops mid-answer, with no [DONE]
                self.wfile.write(_chunk(model, word if index == 0 else " " + word))
                self.wfile.flush()
            self.wfile.write(_chunk(model, None) + b"data: [DONE]\n\n")

        def log_message(self, format: str, *args: Any) -> None:
            pass  # prompts never go to a log

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake vLLM replica (serving/fakes.py).")
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", required=True, help="said in every answer")
    args = parser.parse_args()
    FakeVLLMServer(f"Answered by replica {args.name}.", host=args.host, port=args.port).serve()


if __name__ == "__main__":
    main()
