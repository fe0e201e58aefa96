"""A tiny OTLP/HTTP collector: takes ``POST /v1/traces`` (protobuf) and keeps what came.

In the tests, ``otlp_collector()`` yields its base URL and the spans received, decoded
with opentelemetry-proto. Run alone, it is a sink for a benchmark with tracing on that
counts spans and decodes nothing (so it costs the machine little):

    .venv/bin/python -m tests.observe.otlp_collector --port 4318
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TRACES_PATH = "/v1/traces"


@dataclass
class Received:
    """What a collector was sent: each export's body, and its spans once decoded."""

    bodies: list[bytes] = field(default_factory=list)  # kept when it decodes
    exports: int = 0
    status: int = 200  # what it answers
    lock: threading.Lock = field(default_factory=threading.Lock)

    def spans(self) -> list[tuple[dict[str, Any], Any]]:
        """Every span received, with its resource's attributes."""
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        out = []
        for body in list(self.bodies):
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            for resource_spans in request.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    out.extend((resource, span) for span in scope_spans.spans)
        return out


def _handler(received: Received, decode: bool) -> type[BaseHTTPRequestHandler]:
    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            if self.path != TRACES_PATH:
                self._answer(404)
                return
            with received.lock:
                received.exports += 1
                if decode:
                    received.bodies.append(body)
            self._answer(received.status)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    return Collector


@contextmanager
def otlp_collector(port: int = 0, decode: bool = True) -> Iterator[tuple[str, Received]]:
    """A collector on 127.0.0.1: its base URL (``http://127.0.0.1:<port>``) and what it got."""
    received = Received()
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(received, decode))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4318)
    args = parser.parse_args()
    with otlp_collector(args.port, decode=False) as (url, received):
        print(f"collecting OTLP/HTTP traces at {url}{TRACES_PATH}; Ctrl-C stops", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print(f"{received.exports} exports received")


if __name__ == "__main__":
    main()
