"""A TCP proxy in front of the test S3 server that a test can take down for a while.

An outage here is what a client sees when an endpoint goes away: open connections are cut
and new ones are refused (the listening socket is closed), until the proxy listens again on
the same port. Threads, not asyncio: the test drives it from plain pytest code.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class OutageProxy:
    """Forwards 127.0.0.1:<port> to 127.0.0.1:<target_port>; `outage(s)` refuses for s seconds."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.refused_from: float | None = None
        self.refused_until: float | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OutageProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection."""
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            conns, self._conns = self._conns, set()
        for conn in conns:
            _close(conn)

    def outage(self, seconds: float) -> threading.Thread:
        """Refuse connections for `seconds` from now (in a thread); returns the thread."""

        def run() -> None:
            self.refused_from = time.time()
            self.stop()
            time.sleep(seconds)
            self.start()
            self.refused_until = time.time()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by stop()
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._conns |= {client, upstream}
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:  # the other side was cut: end this direction too
            pass
        finally:
            for conn in (src, dst):
                _close(conn)
                with self._lock:
                    self._conns.discard(conn)


def _close(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)
    conn.close()
