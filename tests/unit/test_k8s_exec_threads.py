"""Overlapping execs through the real ``kubernetes.stream`` code, then a REST call.

A small API server on 127.0.0.1 answers both sides the way kube-apiserver does: a pod
exec is a websocket upgrade (subprotocol ``v4.channel.k8s.io``; stdout on channel 1, the
final metav1.Status on channel 3), everything else plain JSON. The server holds every
exec handshake until all of them have arrived, so the execs overlap for certain.

``kubernetes.stream.stream`` swaps ``ApiClient.call_api`` while it connects; execs that
overlap on one shared client can leave the websocket version installed, and every later
REST call then fails with ApiException(0) "Handshake status 200 OK"
(kubernetes-client/python#928). labkit gives each exec its own ApiClient.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from labkit.backends.kind import probe
from labkit.backends.kind.guard import check_context, load_kubeconfig
from labkit.model import Traffic
from labkit.tools.k8s import KubeClient

EXECS = 6
_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, section 1.3
SUCCESS = json.dumps({"metadata": {}, "status": "Success"})
DISCOVERY = {
    "/version": {"major": "1", "minor": "36", "gitVersion": "v1.36.4"},
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        {"name": "namespaces", "singularName": "namespace", "namespaced": False,
         "kind": "Namespace", "verbs": ["get", "list"]},
        {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod",
         "verbs": ["get", "list"]}]},
    "/api/v1/namespaces/shop-web": {"apiVersion": "v1", "kind": "Namespace",
                                    "metadata": {"name": "shop-web"}},
}


def _frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked server-to-client websocket frame (RFC 6455, section 5.2)."""
    head = bytes([0x80 | opcode])
    if len(payload) < 126:
        return head + bytes([len(payload)]) + payload
    return head + bytes([126]) + struct.pack("!H", len(payload)) + payload


class FakeApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.all_execs_in = threading.Barrier(EXECS, timeout=10)
        self.rest_paths: list[str] = []


class Handler(BaseHTTPRequestHandler):
    server: FakeApiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self._exec(url.path, parse_qs(url.query))
            return
        self.server.rest_paths.append(url.path)
        body = DISCOVERY.get(url.path)
        data = json.dumps(body or {"kind": "Status", "code": 404}).encode()
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _exec(self, path: str, query: dict[str, list[str]]) -> None:
        with contextlib.suppress(threading.BrokenBarrierError):  # the test reports it
            self.server.all_execs_in.wait()  # every exec is now inside stream.stream
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.send_header("Sec-WebSocket-Protocol", "v4.channel.k8s.io")
        self.end_headers()
        pod = path.split("/")[-2]
        script = query.get("command", [""])[-1]
        ids = [line.split()[1] for line in script.splitlines() if line.startswith("p ")]
        out = "".join(f"{probe.MARK}\t{i}\t0\t200\tok {pod}\t\n" for i in ids)
        self.wfile.write(_frame(0x2, b"\x01" + out.encode()))
        self.wfile.write(_frame(0x2, b"\x03" + SUCCESS.encode()))
        self.wfile.write(_frame(0x8, struct.pack("!H", 1000)))
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def api_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[
        FakeApiServer, Path]]:
    monkeypatch.setenv("HOME", str(tmp_path))  # the dynamic client's discovery cache
    server = FakeApiServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "kind-cni-lab",
        "clusters": [{"name": "kind-cni-lab", "cluster": {"server": f"http://{host}:{port}"}}],
        "users": [{"name": "kind-cni-lab", "user": {"token": "t"}}],
        "contexts": [{"name": "kind-cni-lab",
                      "context": {"cluster": "kind-cni-lab", "user": "kind-cni-lab"}}]}))
    try:
        yield server, kubeconfig
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_overlapping_execs_leave_the_client_usable_for_rest_calls(
        api_server: tuple[FakeApiServer, Path]) -> None:
    server, kubeconfig = api_server
    ctx = check_context(load_kubeconfig([kubeconfig]), "cni-lab")  # as the kind backend does
    kube = KubeClient(ctx.name, ctx.client_config)
    sources = [f"shop-web/pod-{i}" for i in range(EXECS)]
    jobs = {src: [(Traffic(src, "ip:10.244.1.5", 8080),
                   probe.Target(i, "http://10.244.1.5:8080/"))]
            for i, src in enumerate(sources)}

    def exec_script(source: str, script: str) -> Any:
        ns, _, pod = source.partition("/")
        return kube.exec(ns, pod, ["sh", "-c", script], container="probe", timeout=10)

    results = probe.run_probes(jobs, {}, exec_script, parallel=EXECS)

    assert not server.all_execs_in.broken, "the execs did not overlap"
    assert len(results) == EXECS and all(r.outcome.allowed for r in results.values())
    # The REST call after the overlapping execs: discovery, then a plain GET.
    ns = kube.get("v1", "Namespace", "shop-web")
    assert ns is not None and ns["metadata"]["name"] == "shop-web"
    assert "/api/v1/namespaces/shop-web" in server.rest_paths
