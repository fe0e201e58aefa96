"""A stand-in for a server of ``bench/engine.py``, run as a script: ``python fake_openai.py
PORT KEY``. It wants ``Authorization: Bearer KEY`` (any request when KEY is empty) and
answers a streamed chat completion of two tokens and embeddings of three dimensions."""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    key = ""

    def do_GET(self) -> None:
        self._send(200, "application/json", b"{}")

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        if self.key and self.headers.get("authorization") != f"Bearer {self.key}":
            self._send(401, "application/json", b'{"error": {"code": "invalid_api_key"}}')
        elif self.path == "/v1/embeddings":
            data = [{"index": i, "embedding": [0.1, 0.2, 0.3]} for i in range(len(body["input"]))]
            self._send(200, "application/json", json.dumps({"data": data}).encode())
        else:
            chunks = [
                {"choices": [{"delta": {"content": "one"}}]},
                {"choices": [{"delta": {"content": " two"}, "finish_reason": "length"}]},
                {"choices": [], "usage": {"completion_tokens": 2}},
            ]
            lines = [f"data: {json.dumps(chunk)}\n\n" for chunk in chunks] + ["data: [DONE]\n\n"]
            self._send(200, "text/event-stream", "".join(lines).encode())

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the benchmark's server log stays empty."""


if __name__ == "__main__":
    Handler.key = sys.argv[2]
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
