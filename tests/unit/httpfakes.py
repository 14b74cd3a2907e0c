"""A local HTTP server on 127.0.0.1 for download tests: serves fake release files, and
misbehaves on request (a truncated body, a 404, a stalled answer)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Server:
    """Serves ``files``; ``/truncated/*`` announces more bytes than it sends, ``/slow/*``
    sends the headers and then nothing until the test ends."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.release = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                body = owner.files.get(self.path)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body) * (2 if "truncated" in
                                                                     self.path else 1)))
                self.end_headers()
                if "/slow/" in self.path:
                    owner.release.wait(10)
                    return
                self.wfile.write(body)
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def serve() -> Iterator[Server]:
    """For a pytest fixture: a running server, shut down afterwards."""
    s = Server()
    try:
        yield s
    finally:
        s.close()
