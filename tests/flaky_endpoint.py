"""A chat-completions endpoint on 127.0.0.1 that fails on purpose: it answers some requests
with 429 (with Retry-After), 500, 503 or a dropped connection, and passes the rest to a real
upstream (`vllm`'s OpenAI server) or to a canned reply. It records when each request came
and what it was answered, so a test can check the retries and the request rate."""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# One fault per entry: an HTTP status, or "drop" (close the connection without a reply).
Fault = int | str


@dataclass
class Seen:
    at: float
    answered: Fault  # the injected fault, or the upstream's status
    body: dict


@dataclass
class FlakyEndpoint:
    """`faults_every`: every n-th request (1-based) gets the next fault of `faults`, in
    turn; `down`: every request gets 503 while it is set (an outage)."""

    upstream: str | None = None  # e.g. http://127.0.0.1:PORT (no /v1)
    reply: Callable[[dict], dict] | None = None  # a canned chat-completions body
    faults: tuple[Fault, ...] = (429, 500, 503, "drop")
    faults_every: int = 0
    retry_after_s: int = 1
    down: bool = False
    seen: list[Seen] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> str:
        """Serve in a thread; returns the base URL a config's base_url takes (with /v1)."""
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                endpoint._answer(self, raw)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def injected(self) -> list[Seen]:
        return [s for s in self.seen if s.answered != 200]

    def _fault_for(self, n: int) -> Fault | None:
        if self.down:
            return 503
        if self.faults_every and n % self.faults_every == 0:
            return self.faults[(n // self.faults_every - 1) % len(self.faults)]
        return None

    def _answer(self, handler: http.server.BaseHTTPRequestHandler, raw: bytes) -> None:
        body = json.loads(raw)
        with self._lock:
            n = len(self.seen) + 1
            fault = self._fault_for(n)
            seen = Seen(time.monotonic(), fault if fault is not None else 200, body)
            self.seen.append(seen)
        if fault == "drop":
            handler.close_connection = True
            handler.connection.shutdown(2)  # the client reads a disconnect, no status
            return
        if fault is not None:
            error = {"error": {"message": f"injected {fault}", "type": "injected"}}
            headers = {"Retry-After": str(self.retry_after_s)} if fault == 429 else {}
            _send(handler, int(fault), json.dumps(error).encode(), headers)
            return
        status, data = self._forward(handler.path, raw, body)
        seen.answered = status
        _send(handler, status, data, {})

    def _forward(self, path: str, raw: bytes, body: dict) -> tuple[int, bytes]:
        if self.upstream is None:
            return 200, json.dumps(self.reply(body)).encode()
        request = urllib.request.Request(
            self.upstream + path, data=raw, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()


def _send(handler: Any, status: int, data: bytes, headers: dict[str, str]) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for key, value in headers.items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(data)


def max_in_window(times: list[float], window_s: float) -> int:
    """The most requests that started within any `window_s` seconds."""
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] > window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best
