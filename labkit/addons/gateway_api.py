"""Gateway API on Cilium (lab 08): CRDs, ``gatewayAPI.enabled``, Gateways, and measured splits.

The order matters (cni-ground-truth.md §1, §5.6; Cilium docs, network/servicemesh/
gateway-api/gateway-api: "The below CRDs from Gateway API ... must be pre-installed"):

1. the Gateway API CRDs at the pinned version (versions.yaml ``gateway_api``, v1.6.1; Cilium
   1.20 needs >= v1.6.1), applied server-side (``kubectl apply --server-side``: the
   HTTPRoute CRD is too large for the annotation a client-side apply writes);
2. ``helm upgrade cilium cilium/cilium --reuse-values --set gatewayAPI.enabled=true``, then
   a restart of the operator and the agents so they start their Gateway controller (the
   Cilium docs restart both after a Helm upgrade). The operator looks for the CRDs when it
   starts: enabled before they exist, it runs without a Gateway controller.

A Gateway then gets a Service of type LoadBalancer, ``cilium-gateway-<name>``; MetalLB (lab
03) gives it its address. The sim keeps the Gateway API objects in
:class:`~labkit.backends.sim.controllers.SimGatewayController` and routes requests with
:mod:`labkit.gateway` exactly; a measured split on sim is drawn at random by weight,
seeded (:func:`labkit.gateway.draw_split`), and labelled simulated.
"""

from __future__ import annotations

import base64
import html
import io
import shlex
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from labkit.backends.kind import probe
from labkit.backends.sim.controllers import SimGatewayController
from labkit.display.render import Rendered
from labkit.environments import environments_dir, pinned
from labkit.errors import ClusterError
from labkit.gateway import KINDS as GATEWAY_KINDS
from labkit.gateway import Request, Result, Router, SplitCheck, draw_split, split_check
from labkit.gateway.parse import PARSERS
from labkit.policy.kinds import parse_one
from labkit.policy.parse import documents_of, read_documents
from labkit.progress import wait_until
from labkit.tools.files import fetch_url

if TYPE_CHECKING:
    from labkit.backends.base import Backend
    from labkit.backends.kind.backend import KindBackend
    from labkit.backends.sim.backend import SimBackend
    from labkit.progress import Progress

GROUP = "gateway.networking.k8s.io"
#: The kinds the pinned standard-install.yaml serves (labkit.gateway.parse knows each).
SERVED = frozenset(PARSERS)
#: What lab 08 routes: the Gateway, the storefront, the 80/20 checkout split with its canary
#: header, and the same split east-west (GAMMA) on Service shop-api/checkout.
ROUTES = environments_dir() / "examples" / "gateway-split" / "manifests" / "20-gateway.yaml"
#: The two checkout versions and their Services (environments/workloads/shop-checkout).
CHECKOUT_WORKLOAD = "shop-checkout"
CILIUM_NAMESPACE = "kube-system"
#: Restarted after the Helm upgrade so they start their Gateway controller.
RESTARTS = (("apps/v1", "Deployment", "cilium-operator"), ("apps/v1", "DaemonSet", "cilium"))
CONFIG_KEY = "enable-gateway-api"  # in ConfigMap kube-system/cilium-config

Fetch = Callable[[str], str]


def _backend(target: Any) -> Backend:
    return getattr(target, "impl", target)


# -- the commands, as the learner would type them -----------------------------------------

def crd_command(context: str) -> list[str]:
    return ["kubectl", "apply", "--server-side", "-f",
            str(pinned("gateway_api", "standard_install")), "--context", context]


def enable_argv(context: str) -> list[str]:
    """The Helm upgrade of the Cilium release that turns the Gateway API controller on."""
    return ["helm", "upgrade", "cilium", str(pinned("cilium", "chart")), "--kube-context",
            context, "--namespace", CILIUM_NAMESPACE, "--version",
            str(pinned("cilium", "version")), "--reuse-values", "--set", "gatewayAPI.enabled=true"]


def restart_commands(context: str) -> list[list[str]]:
    return [["kubectl", "-n", CILIUM_NAMESPACE, "rollout", "restart",
             f"{kind.lower()}/{name}", "--context", context] for _, kind, name in RESTARTS]


def restart_patch(api: str, kind: str, name: str, stamp: str) -> dict[str, Any]:
    """What ``kubectl rollout restart`` changes: an annotation on the pod template."""
    return {"apiVersion": api, "kind": kind,
            "metadata": {"name": name, "namespace": CILIUM_NAMESPACE},
            "spec": {"template": {"metadata": {"annotations": {
                "kubectl.kubernetes.io/restartedAt": stamp}}}}}


# -- state -----------------------------------------------------------------------------------

@dataclass(frozen=True, repr=False)
class GatewayApiStatus(Rendered):
    crds: bool  # the Gateway API CRDs are served
    enabled: bool  # gatewayAPI.enabled in Cilium's configuration
    controller: str  # "running", or why not
    simulated: bool = False

    @property
    def ok(self) -> bool:
        return self.crds and self.enabled and self.controller == "running"

    def as_dict(self) -> dict[str, Any]:
        return {"crds": self.crds, "enabled": self.enabled, "controller": self.controller,
                "ok": self.ok, "simulated": self.simulated}

    def to_text(self) -> str:
        tag = " [simulated]" if self.simulated else ""
        return (f"Gateway API CRDs ({pinned('gateway_api', 'version')}): "
                f"{'installed' if self.crds else 'MISSING'}{tag}\n"
                f"gatewayAPI.enabled: {str(self.enabled).lower()}\n"
                f"Cilium's Gateway controller: {self.controller}")


def status(target: Any) -> GatewayApiStatus:
    return _backend(target).dispatch(sim=_status_sim, kind=_status_kind)


def _status_sim(b: SimBackend) -> GatewayApiStatus:
    c = b.cluster
    settings = c.cni.settings if c.cni else {}
    return GatewayApiStatus(c.extra_served >= SERVED, bool(settings.get("gatewayAPI.enabled")),
                            str(settings.get("gatewayController", "not enabled")), True)


def _status_kind(b: KindBackend) -> GatewayApiStatus:
    crds = b.kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition",
                      f"gateways.{GROUP}") is not None
    config = b.kube.get("v1", "ConfigMap", "cilium-config", CILIUM_NAMESPACE) or {}
    enabled = (config.get("data") or {}).get(CONFIG_KEY) == "true"
    gc = b.kube.get(f"{GROUP}/v1", "GatewayClass", "cilium") if crds else None
    accepted = any(c.get("type") == "Accepted" and c.get("status") == "True"
                   for c in ((gc or {}).get("status") or {}).get("conditions") or [])
    controller = "running" if accepted else (
        "not enabled" if not enabled else
        "no accepted GatewayClass cilium: restart the operator once the CRDs are installed")
    return GatewayApiStatus(crds, enabled, controller)


# -- install ------------------------------------------------------------------------------

def install_crds(target: Any, *, fetch: Fetch | None = None) -> list[str]:
    """Step 1: the pinned standard-install.yaml, server-side. Idempotent."""
    return _backend(target).dispatch(sim=_crds_sim, kind=lambda b: _crds_kind(b, fetch))


def _crds_kind(b: KindBackend, fetch: Fetch | None) -> list[str]:
    url = str(pinned("gateway_api", "standard_install"))
    docs = [d for d in yaml.safe_load_all((fetch or fetch_url)(url)) if d]
    return b.apply_raw(docs)


def _crds_sim(b: SimBackend) -> list[str]:
    c = b.cluster
    with c.batch():
        c.extra_served |= SERVED
        if not any(isinstance(h, SimGatewayController) for h in c.hooks):
            c.hooks.insert(0, SimGatewayController())  # before MetalLB's allocator
    return [f"CustomResourceDefinition {plural(kind)}.{GROUP} (simulated)"
            for kind in sorted({k for _, k in SERVED})]


def plural(kind: str) -> str:
    """A CRD's plural resource name (``gateways``, ``backendtlspolicies``)."""
    low = kind.lower()
    return low[:-1] + "ies" if low.endswith("y") else low + "s"


def enable(target: Any, progress: Progress | None = None, *,
           now: Callable[[], str] | None = None) -> list[str]:
    """Step 2: ``gatewayAPI.enabled=true`` by a Helm upgrade of the Cilium release, then the
    operator and agents restarted. Returns the commands (kind) or what changed (sim)."""
    return _backend(target).dispatch(sim=_enable_sim,
                                     kind=lambda b: _enable_kind(b, progress, now))


def _enable_kind(b: KindBackend, progress: Progress | None,
                 now: Callable[[], str] | None) -> list[str]:
    context = b.stage.context
    done = []
    if not _status_kind(b).ok:
        argv = enable_argv(context)
        b.run(argv, timeout=900, hint="`helm status cilium -n kube-system` tells why")
        done.append(" ".join(argv))
        stamp = (now or (lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())))()
        for (api, kind, name), argv in zip(RESTARTS, restart_commands(context), strict=True):
            b.kube.apply(restart_patch(api, kind, name, stamp))
            done.append(" ".join(argv))
    b.wait_daemonset(CILIUM_NAMESPACE, "cilium", timeout=600, progress=progress)
    b.wait_ready(nodes=True, namespaces=(CILIUM_NAMESPACE,), timeout=600, progress=progress)
    return done


def _enable_sim(b: SimBackend) -> list[str]:
    c = b.cluster
    if c.cni is None or c.cni.name != "cilium":
        raise ClusterError("Cilium is not installed [simulated]",
                           hint="lab 08 runs on lab 04's cluster: checks_mesh.ensure_mesh(lab)")
    with c.batch():
        c.cni.settings["gatewayAPI.enabled"] = True
        # The operator checks for the CRDs when it starts (the restart above).
        c.cni.settings["gatewayController"] = "running" if c.extra_served >= SERVED else \
            "off: the Gateway API CRDs were missing when the operator started"
        c.reconcile()
    return ["gatewayAPI.enabled=true; cilium-operator and cilium restarted (simulated)"]


# -- Gateway API objects ------------------------------------------------------------------

def apply(target: Any, manifests: Path | str = ROUTES) -> list[str]:
    """Apply Gateway API objects from a file or YAML text (strictly validated as the v1.6.1
    CRDs do; refused as the API server refuses them while the CRDs are missing)."""
    b = _backend(target)
    docs = documents_of(manifests, "<text>") if isinstance(manifests, str) and "\n" in \
        manifests else read_documents([manifests])
    served = b.dispatch(sim=lambda s: s.served(), kind=lambda k: k.served())
    for source, doc in docs:
        parse_one(doc, source, GATEWAY_KINDS, served=served)
    return b.dispatch(sim=lambda s: _apply_sim(s, docs), kind=lambda k: k.apply_raw(
        [d for _, d in docs]))


def _apply_sim(b: SimBackend, docs: list[tuple[str, dict[str, Any]]]) -> list[str]:
    c = b.cluster
    hook = _controller(b)
    out = []
    with c.batch():
        for _, doc in docs:
            meta = doc["metadata"]
            key = f"{doc['kind']} {meta.get('namespace', '')}/{meta['name']}"
            hook.docs[key] = doc
            out.append(key)
        c.reconcile()
    return out


def _controller(b: SimBackend) -> SimGatewayController:
    """Where the sim keeps Gateway API objects (it exists once the CRDs are installed)."""
    hook = next((h for h in b.cluster.hooks if isinstance(h, SimGatewayController)), None)
    if hook is None:
        raise ClusterError("the Gateway API CRDs are not installed [simulated]",
                           hint="gateway_api.install_crds(lab) first")
    return hook


def router(target: Any) -> Router:
    """The routing view of the cluster: its Services and Namespaces, and its Gateway API
    objects (kind: read back from the API server)."""
    b = _backend(target)
    state = b.state()
    objects: list[Any] = [*state.namespaces.values(), *state.services.values()]
    docs = b.dispatch(sim=lambda s: list(_controller(s).docs.values()), kind=_docs_kind)
    for doc in docs:
        objects += parse_one(doc, "cluster", GATEWAY_KINDS)
    return Router(objects)


def _docs_kind(b: KindBackend) -> list[dict[str, Any]]:
    out = []
    for kind in ("GatewayClass", "Gateway", "HTTPRoute", "ReferenceGrant"):
        for d in b.kube.list(f"{GROUP}/v1", kind):
            meta = d.get("metadata") or {}
            kept = {k: meta[k] for k in ("name", "namespace", "labels", "creationTimestamp")
                    if meta.get(k)}
            out.append({"apiVersion": d["apiVersion"], "kind": kind, "metadata": kept,
                        "spec": d.get("spec") or {}})
    return out


def address(target: Any, gateway: str = "shop-web/shop", *, timeout: float = 120) -> str:
    """The Gateway's address (``status.addresses``), waited for; "" if none came."""
    ns, _, name = gateway.partition("/")

    def kind(b: KindBackend) -> str:
        def check() -> tuple[bool, str]:
            gw = b.kube.get(f"{GROUP}/v1", "Gateway", name, ns) or {}
            found = [a.get("value") for a in (gw.get("status") or {}).get("addresses") or []]
            return bool(found), f"Gateway {gateway} address {found[0] if found else '<none>'}"

        try:
            wait_until(check, title=f"waiting for an address for Gateway {gateway}",
                       timeout=timeout)
        except TimeoutError:
            return ""
        gw = b.kube.get(f"{GROUP}/v1", "Gateway", name, ns) or {}
        return str(((gw.get("status") or {}).get("addresses") or [{}])[0].get("value", ""))

    def sim(b: SimBackend) -> str:
        svc = b.cluster.services.get(f"{ns}/cilium-gateway-{name}")
        return svc.external_ip if svc else ""

    return _backend(target).dispatch(sim=sim, kind=kind)


# -- measuring a split ----------------------------------------------------------------------

@dataclass(frozen=True, repr=False)
class SplitRun(Rendered):
    """N requests sent, the backend of each counted, judged against the route's weights."""

    request: Request
    requests: int
    counts: dict[str, int]  # backend Service "ns/name" (or "error: ...") -> responses
    route: Result
    check: SplitCheck | None  # None when the route sends nothing to backends
    command: str
    simulated: bool = False

    @property
    def ok(self) -> bool:
        return self.check is not None and self.check.ok

    def as_dict(self) -> dict[str, Any]:
        return {"request": self.request.fields, "requests": self.requests,
                "counts": self.counts, "route": self.route.as_dict(),
                "check": self.check.as_dict() if self.check else None,
                "command": self.command, "simulated": self.simulated}

    def title(self) -> str:
        target = f"{'service' if self.request.mesh else 'gateway'} {self.request.target}"
        headers = "".join(f" -H '{k}: {v}'" for k, v in self.request.headers)
        return f"{self.requests} x {self.request.method} {self.request.path}{headers} via {target}"

    def to_text(self) -> str:
        tag = " [simulated: drawn at random by weight, seeded]" if self.simulated else ""
        lines = [self.title() + tag, f"  command: {self.command}",
                 *(f"  {n:5d}  {b}" for b, n in sorted(self.counts.items()))]
        lines.append(self.check.to_text() if self.check else
                     f"  routed to no backend: status {self.route.status}")
        return "\n".join(lines)

    def chart_png(self) -> bytes:
        """A bar chart of observed shares against the weights, with each Wilson interval."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: heavy
        from matplotlib.figure import Figure  # lazy: heavy

        fig = Figure(figsize=(6, 2.8), dpi=96)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        shares = self.check.shares if self.check else ()
        names = [s.backend for s in shares]
        xs = range(len(names))
        ax.bar(xs, [s.observed for s in shares], color="#4c72b0", label="observed")
        ax.errorbar(xs, [s.observed for s in shares], fmt="none", ecolor="black", capsize=6,
                    yerr=[[s.observed - s.low for s in shares],
                          [s.high - s.observed for s in shares]], label="interval")
        ax.scatter(xs, [s.expected for s in shares], color="#dd8452", marker="D", zorder=3,
                   label="weight")
        ax.set_xticks(list(xs), names)
        ax.set_ylim(0, 1)
        ax.set_ylabel("share of requests")
        ax.set_title(self.title() + (" (simulated)" if self.simulated else ""), fontsize=8)
        ax.legend(fontsize=7)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()

    def _repr_html_(self) -> str:
        img = ""
        if self.check is not None:
            data = base64.b64encode(self.chart_png()).decode()
            img = f'<img alt="observed split" src="data:image/png;base64,{data}"/>'
        check = self.check._repr_html_() if self.check else ""
        return (f"<pre>{html.escape(self.to_text())}</pre>{img}{check}")


def send(target: Any, request: Request, n: int = 200, *, seed: int = 2026,
         router_: Router | None = None) -> SplitRun:
    """Send ``n`` copies of ``request`` and count which backend answered each.

    kind: curl from labkit's probe pod, to the Gateway's address (north-south) or to the
    Service's name (east-west); each checkout pod answers with its own name. sim: the route
    computed by labkit.gateway, then ``n`` draws by weight (seeded, labelled simulated).
    """
    if n <= 0:
        raise ClusterError(f"n={n}: send at least one request", hint="n=200 is a good start")
    b = _backend(target)
    r = router_ or router(target)
    route = r.route(request)
    url = b.dispatch(sim=lambda s: _url(s, request, r), kind=lambda k: _url(k, request, r))
    command = _curl_loop(url, request, n)
    counts = b.dispatch(sim=lambda s: _counts_sim(route, n, seed),
                        kind=lambda k: _counts_kind(k, command, route, r))
    valid = {k: v for k, v in counts.items() if not k.startswith("error")}
    check = split_check(counts, route.backends) if route.backends and valid else None
    return SplitRun(request, n, counts, route, check, command, b.simulated)


def _url(b: Any, request: Request, r: Router) -> str:
    if request.mesh:
        ns, _, name = request.target.partition("/")
        return f"http://{name}.{ns}.svc.cluster.local:{request.port}{request.path}"
    ip = address(b, request.target, timeout=120)
    if not ip:
        raise ClusterError(f"Gateway {request.target} has no address",
                           hint="is MetalLB installed (metallb.install(lab))? `kubectl get "
                           "svc -A | grep cilium-gateway` shows the Gateway's Service")
    port = "" if request.port == 80 else f":{request.port}"
    return f"http://{ip}{port}{request.path}"


def _curl_loop(url: str, request: Request, n: int) -> str:
    headers = ([("Host", request.host)] if request.host else []) + list(request.headers)
    opts = " ".join(f"-H {shlex.quote(f'{k}: {v}')}" for k, v in headers)
    return (f"for i in $(seq {n}); do curl -sS -m {probe.MAX_TIME} -X {request.method} "
            f"{opts} {shlex.quote(url)} || printf 'error'; echo; done")


def _counts_sim(route: Result, n: int, seed: int) -> dict[str, int]:
    if route.status != 200 or not route.backends:
        return {f"error: HTTP {route.status}": n}
    return draw_split(route.backends, n, seed=seed)


def _counts_kind(b: KindBackend, command: str, route: Result, r: Router) -> dict[str, int]:
    client = next((p for p in b.pods("labkit-probe") if p.labels.get("app") == "probe"), None)
    if client is None:
        raise ClusterError("no labkit probe pod", hint="lab.probe_pod() deploys it")
    out = b.exec(client.key, ["sh", "-c", command], container="probe",
                 timeout=probe.MAX_TIME * 400 + 60)
    return count_answers(out.stdout.splitlines(), b.pods("shop-api"), route, r)


def count_answers(lines: Sequence[str], pods: Sequence[Any], route: Result, r: Router
                  ) -> dict[str, int]:
    """Responses (pod names from ``serve-hostname``) counted per backend Service of the
    route; anything else is counted as an error."""
    by_pod = {}
    for key in route.backends:
        svc = r.services.get(key)
        for pod in pods:
            if svc and svc.selector and pod.namespace == svc.namespace and \
                    svc.selector.items() <= pod.labels.items():
                by_pod[pod.name] = key
    counts: Counter[str] = Counter()
    for line in lines:
        text = line.strip()
        counts[by_pod.get(text, f"error: {text[:60] or 'empty answer'}")] += 1
    return dict(counts)

