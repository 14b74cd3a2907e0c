"""``curl`` inside a simulated pod: name resolution, Services, and the data plane's verdict.

The connection is judged by the sim backend's ``observe`` (the installed CNI's view of the
policies), exactly as ``lab.probe`` judges it, and printed as curl 8 prints it
(``images.curl`` in versions.yaml; samples in shared/reference/samples/curl/):

- allowed: the server's answer. The shop runs ``agnhost netexec``, whose ``/hostname``
  answers the pod's name and ``/echo?msg=X`` answers X (kubernetes/test/images/agnhost
  README); other paths and other servers are not modelled, and the output says so;
- dropped (L3/L4 policy): the client times out, exit 28 (``curl: (28) ...``);
- denied by a Cilium HTTP rule: ``403`` with Envoy's body ``Access denied``;
- nothing listens on the port, or a Service has no endpoints (kube-proxy rejects): exit 7;
- an unknown name: exit 6, ``Could not resolve host``; a name looked up while a policy
  drops DNS (UDP 53 to CoreDNS): the lookup times out (exit 28 with ``-m``, else 6).

DNS follows the pod's search path (``<ns>.svc.cluster.local``, ``svc.cluster.local``): a
Service is ``name``, ``name.ns``, ``name.ns.svc`` or ``name.ns.svc.cluster.local``.
kube-proxy picks one endpoint at random; the sim takes the first (sorted), so that runs
repeat.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from labkit.backends.sim import SimBackend
from labkit.magics.output import Output, Unsupported
from labkit.model import Denial, HttpRequest, Traffic

if TYPE_CHECKING:
    from labkit.backends.sim.cluster import SimCluster
    from labkit.model import Pod


#: How long a lookup waits when every DNS packet is dropped: the curl image is Alpine, whose
#: musl resolver tries each nameserver for 5 s, twice (the kubelet's resolv.conf sets no
#: timeout or attempts options) before giving up.
RESOLVER_SECONDS = 10


@dataclass
class CurlArgs:
    url: str = ""
    silent: bool = False
    show_error: bool = False
    fail: bool = False
    max_time: float | None = None
    connect_timeout: float | None = None
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    output: str = ""
    write_out: str = ""

    @property
    def quiet_errors(self) -> bool:
        return self.silent and not self.show_error


SHORT_BOOLS = {"s": "silent", "S": "show_error", "f": "fail"}
VALUE_OPTIONS = {"-m": "max_time", "--max-time": "max_time",
                 "--connect-timeout": "connect_timeout", "-X": "method", "--request": "method",
                 "-H": "headers", "--header": "headers", "-o": "output", "--output": "output",
                 "-w": "write_out", "--write-out": "write_out"}
LONG_BOOLS = {"--silent": "silent", "--show-error": "show_error", "--fail": "fail"}


def parse_curl(argv: Sequence[str]) -> CurlArgs:
    args = CurlArgs()
    words = list(argv)
    i = 0
    while i < len(words):
        word = words[i]
        if word in VALUE_OPTIONS:
            if i + 1 >= len(words):
                raise Unsupported(f"curl: option {word} needs an argument")
            _set(args, VALUE_OPTIONS[word], words[i + 1])
            i += 1
        elif word in LONG_BOOLS:
            setattr(args, LONG_BOOLS[word], True)
        elif word.startswith("-") and not word.startswith("--") and len(word) > 1:
            rest = word[1:]
            for j, ch in enumerate(rest):  # -sS, -sf, -sSo /dev/null
                if ch in SHORT_BOOLS:
                    setattr(args, SHORT_BOOLS[ch], True)
                elif f"-{ch}" in VALUE_OPTIONS:
                    value = rest[j + 1:] or (words[i + 1] if i + 1 < len(words) else "")
                    if not rest[j + 1:]:
                        i += 1
                    _set(args, VALUE_OPTIONS[f"-{ch}"], value)
                    break
                else:
                    raise Unsupported(f"the curl option -{ch} is not modelled")
        elif word.startswith("-"):
            raise Unsupported(f"the curl option {word} is not modelled")
        elif args.url:
            raise Unsupported("one URL per curl is modelled")
        else:
            args.url = word
        i += 1
    if not args.url:
        raise Unsupported("curl needs a URL")
    if args.output not in ("", "/dev/null"):
        raise Unsupported("curl -o is modelled only as -o /dev/null")
    return args


def _set(args: CurlArgs, name: str, value: str) -> None:
    if name in ("max_time", "connect_timeout"):
        try:
            setattr(args, name, float(value))
        except ValueError as exc:
            raise Unsupported(f"curl: {value!r} is not a number of seconds") from exc
    elif name == "headers":
        key, _, val = value.partition(":")
        args.headers[key.strip()] = val.strip()
    else:
        setattr(args, name, value)


def curl(backend: SimBackend, source: Pod, argv: Sequence[str]) -> Output:
    """What ``curl argv`` prints when run in ``source`` on the simulated cluster."""
    args = parse_curl(argv)
    url = urlsplit(args.url if "://" in args.url else f"http://{args.url}")
    if url.scheme != "http":
        raise Unsupported(f"{url.scheme}:// is not modelled (the shop serves plain HTTP)")
    host, port = url.hostname or "", url.port or 80
    path = url.path or "/"
    cluster = backend.cluster
    if not _is_address(host):
        lookup = _lookup(backend, source, host, args)
        if lookup is not None:
            return lookup
    target = _resolve(cluster, source, host, port)
    if isinstance(target, Output):
        return _fail(args, target.code, target.stderr)
    dst, ip, dport = target
    http = HttpRequest(args.method.upper(), path + (f"?{url.query}" if url.query else ""),
                       host, dict(args.headers))
    traffic = Traffic(source.key, dst, dport, "TCP", http)
    seen = backend.observe([traffic], {traffic: True})[traffic]
    if seen.allowed:
        return _answer(args, cluster, dst, path, url.query)
    if seen.denial == Denial.HTTP_403:
        return _respond(args, 403, "Access denied\r\n")
    if seen.denial is None:  # refused: nothing listens there
        return _fail(args, 7, f"curl: (7) Failed to connect to {ip} port {port} after 0 ms: "
                     "Couldn't connect to server\n")
    return _timeout(args, ip, port)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _lookup(backend: SimBackend, source: Pod, host: str, args: CurlArgs) -> Output | None:
    """A name is looked up first, over UDP 53 to CoreDNS, which policies can block (lab 02's
    default deny that forgets DNS): then curl fails before connecting. None: it resolves."""
    parts = host.rstrip(".").split(".")
    if len(parts) > 1 and parts[2:] not in ([], ["svc"], ["svc", "cluster", "local"]):
        raise Unsupported(f"names outside the cluster ({host}) are not modelled")
    dns = sorted(sp.pod.key for sp in backend.cluster.pods.values()
                 if sp.phase == "Running" and sp.pod.labels.get("k8s-app") == "kube-dns")
    reachable = False
    if dns:
        query = Traffic(source.key, dns[0], 53, "UDP")
        reachable = backend.observe([query], {query: True})[query].allowed
    if reachable:
        return None
    limits = [t for t in (args.connect_timeout, args.max_time) if t is not None]
    if limits and min(limits) < RESOLVER_SECONDS:
        return _fail(args, 28, f"curl: (28) Resolving timed out after {int(min(limits) * 1000)} "
                     "milliseconds\n")
    return _fail(args, 6, f"curl: (6) Could not resolve host: {host}\n")


def _resolve(cluster: SimCluster, source: Pod, host: str, port: int
             ) -> tuple[str, str, int] | Output:
    """(destination pod key, the address curl connects to, the pod's port) or a failure."""
    for sp in cluster.pods.values():
        if sp.pod.ip == host and not sp.pod.host_network and sp.phase == "Running":
            return sp.pod.key, host, port
    svc = next((s for s in cluster.services.values() if s.cluster_ip == host), None)
    if svc is None and host:
        parts = host.rstrip(".").split(".")
        suffix = parts[2:]
        ns = parts[1] if len(parts) > 1 else source.namespace
        if suffix in ([], ["svc"], ["svc", "cluster", "local"]):
            svc = cluster.services.get(f"{ns}/{parts[0]}")
    if svc is None:
        return Output(stderr=f"curl: (6) Could not resolve host: {host}\n", code=6)
    sport = next((p for p in svc.ports if p.port == port and p.protocol == "TCP"), None)
    if sport is None:
        raise Unsupported(f"service {svc.key} serves no TCP port {port}; what kube-proxy does "
                          "with it is not modelled")
    for sp in sorted(cluster.pods.values(), key=lambda s: s.pod.name):
        p = sp.pod
        if sp.phase != "Running" or p.namespace != svc.namespace or not svc.selector or \
                any(p.labels.get(k) != v for k, v in svc.selector.items()):
            continue
        target = sport.target_port if isinstance(sport.target_port, int) else \
            p.resolve_port(sport.target_port, "TCP")
        if target:
            return p.key, svc.cluster_ip, target
    # kube-proxy rejects connections to a Service without endpoints (ICMP port unreachable).
    return Output(stderr=f"curl: (7) Failed to connect to {host} port {port} after 0 ms: "
                  "Couldn't connect to server\n", code=7)


def _answer(args: CurlArgs, cluster: SimCluster, dst: str, path: str, query: str) -> Output:
    sp = cluster.pods[dst]
    owner = sp.owner.removeprefix("Deployment ")
    image = cluster.deployments[owner][0].image if owner in cluster.deployments else ""
    if "agnhost" in image and path == "/hostname":
        return _respond(args, 200, sp.pod.name)
    if "agnhost" in image and path == "/echo":
        return _respond(args, 200, (parse_qs(query).get("msg") or [""])[0])
    return Output(stderr=f"[simulated] connected: {dst} accepted the connection; what it "
                  f"answers on {path} is not modelled (the sim models agnhost's /hostname and "
                  "/echo?msg=...)\n")


def _respond(args: CurlArgs, status: int, body: str) -> Output:
    if args.fail and status >= 400:
        return _fail(args, 22, f"curl: (22) The requested URL returned error: {status}\n")
    out = "" if args.output == "/dev/null" else body
    if args.write_out:
        if "%{" in args.write_out.replace("%{http_code}", ""):
            raise Unsupported("only %{http_code} is modelled in curl -w")
        out += args.write_out.replace("%{http_code}", str(status)).replace("\\n", "\n")
    return Output(out)


def _timeout(args: CurlArgs, ip: str, port: int) -> Output:
    limits = [t for t in (args.connect_timeout, args.max_time) if t is not None]
    if not limits:
        return Output(stderr="[simulated] the packets are dropped; without --connect-timeout "
                      "or -m, curl waits for the kernel's TCP connect timeout (about 2 "
                      "minutes on Linux) and then exits with code 28\n", code=28)
    ms = int(min(limits) * 1000)
    if args.connect_timeout is not None and ms == int(args.connect_timeout * 1000):
        message = f"curl: (28) Failed to connect to {ip} port {port} after {ms} ms: " \
            "Timeout was reached\n"
    else:
        message = f"curl: (28) Connection timed out after {ms} milliseconds\n"
    return _fail(args, 28, message)


def _fail(args: CurlArgs, code: int, message: str) -> Output:
    return Output(stderr="" if args.quiet_errors else message, code=code)
