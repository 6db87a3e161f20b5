"""A small OpenAI-compatible HTTP server for tests: chat completions (plain and SSE streaming), embeddings.

Tests talk to it through the real ``openai`` client. Each request takes the next scripted reply from
``server.replies`` (or ``server.default``); every request is recorded in ``server.requests``.

A reply is a dict:
    {"content": "text"}                    a normal answer (streamed in pieces when the client streams)
    {"status": 429}                        an HTTP error with an OpenAI-style error body
    {"delay": 5.0, "content": "..."}       answer after a delay (for client timeouts)
    {"truncate": True, "content": "..."}   a stream cut off before [DONE]
    {"garbage": True}                      a body that is not JSON
    {"tool_calls": [{"name": "t", "arguments": {...}}]}   the model calls tools (for agents)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeOpenAI:
    """State of the fake server: scripted replies and recorded requests."""

    def __init__(self) -> None:
        self.replies: list[dict[str, Any]] = []
        self.default: dict[str, Any] = {"content": "I don't know."}
        #: Chooses a reply from the request body (e.g. by the question in the prompt); None falls back to
        #: ``replies`` and ``default``.
        self.responder: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def next_reply(self) -> dict[str, Any]:
        with self.lock:
            return self.replies.pop(0) if self.replies else dict(self.default)

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].endswith("/chat/completions")]


def _handler(state: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length", 0))
            payload = json.loads(self.rfile.read(length) or b"{}")
            with state.lock:
                state.requests.append(
                    {"path": self.path, "body": payload, "authorization": self.headers.get("Authorization", "")}
                )
            reply = (state.responder(payload) if state.responder else None) or state.next_reply()
            if reply.get("delay"):
                time.sleep(reply["delay"])  # the server is slow on purpose; the client's timeout is under test
            if "status" in reply:
                error = {"error": {"message": reply.get("message", "scripted error"), "type": "test", "code": reply["status"]}}
                self._send(reply["status"], json.dumps(error).encode())
                return
            if reply.get("garbage"):
                self._send(200, b"<html>not json</html>", "text/html")
                return
            if self.path.endswith("/embeddings"):
                inputs = payload["input"] if isinstance(payload["input"], list) else [payload["input"]]
                data = [{"object": "embedding", "index": i, "embedding": [float(len(str(x)) % 7 + 1), 1.0, 0.5]} for i, x in enumerate(inputs)]
                self._send(200, json.dumps({"object": "list", "data": data, "model": payload.get("model", "m"),
                                            "usage": {"prompt_tokens": 1, "total_tokens": 1}}).encode())
                return
            content = reply.get("content", "")
            model = payload.get("model", "fake-model")
            calls = [
                {"id": f"call_{i}", "type": "function",
                 "function": {"name": call["name"], "arguments": json.dumps(call.get("arguments", {}))}}
                for i, call in enumerate(reply.get("tool_calls", []))
            ]
            if payload.get("stream"):
                self._stream(content, model, truncate=bool(reply.get("truncate")), calls=calls)
                return
            message: dict[str, Any] = {"role": "assistant", "content": content or None if calls else content}
            if calls:
                message["tool_calls"] = calls
            body = {
                "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
            }
            self._send(200, json.dumps(body).encode())

        def _stream(self, content: str, model: str, truncate: bool, calls: list[dict[str, Any]] | None = None) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            words = content.split(" ")
            pieces = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
            if truncate:
                pieces = pieces[: max(1, len(pieces) // 2)]
            for i, piece in enumerate(pieces):
                delta = {"content": piece} if i else {"role": "assistant", "content": piece}
                chunk = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0, "model": model,
                         "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            if truncate:
                self.wfile.write(b'data: {"id": "chatcmpl-test", "choi')  # cut mid-event, connection closes
                self.wfile.flush()
                self.close_connection = True
                return
            for i, call in enumerate(calls or []):
                delta = {"role": "assistant", "tool_calls": [{"index": i, **call}]}
                chunk = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0, "model": model,
                         "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            end = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0, "model": model,
                   "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls" if calls else "stop"}]}
            self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
            self.wfile.flush()
            self.close_connection = True

    return Handler


@contextmanager
def fake_openai_server() -> Iterator[FakeOpenAI]:
    """Run the fake server on a free port of 127.0.0.1 for the duration of the block."""
    state = FakeOpenAI()

    class QuietServer(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a client that gave up (timeout tests) is expected, not an error of the server

    server = QuietServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
