"""Shared fixtures for the Gateway API tests: a conformance-like base and a request helper.

The base mirrors the set-up every gateway-api conformance test starts from
(conformance/base/manifests.yaml at v1.6.1: an "infra" namespace, three backend
Services, and a Gateway admitting routes from its own namespace), written anew.
"""

from __future__ import annotations

from typing import Any

from labkit.gateway import Request, Result, router_from_text

BASE = """
apiVersion: v1
kind: Namespace
metadata: {name: infra, labels: {gateway-conformance: infra}}
---
apiVersion: v1
kind: Namespace
metadata: {name: web, labels: {gateway-conformance: web-backend}}
---
apiVersion: v1
kind: Namespace
metadata: {name: apps}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: test}
spec: {controllerName: example.net/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: same-namespace, namespace: infra}
spec:
  gatewayClassName: test
  listeners:
  - {name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: Same}}}
""" + "".join(f"""---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {ns}}}
spec:
  selector: {{app: {name}}}
  ports: [{{name: http, port: 8080}}]
""" for ns, name in [("infra", "infra-backend-v1"), ("infra", "infra-backend-v2"),
                     ("infra", "infra-backend-v3"), ("web", "web-backend"),
                     ("apps", "app-backend")])


def route_in(manifests: str, *, base: bool = True, gateway: str = "infra/same-namespace",
             service: str = "", host: str | None = None, path: str = "/", method: str = "GET",
             headers: dict[str, str] | None = None, port: int = 80) -> Result:
    router = router_from_text((BASE + "---\n" if base else "") + manifests)
    req = Request(service or gateway, bool(service), host, path, method,
                  tuple((headers or {}).items()), port)
    return router.route(req)


def backend(result: Result) -> str | None:
    """The one backend a routed request reaches (None when the gateway answered itself)."""
    if result.status != 200:
        return None
    assert len(result.backends) == 1, result.backends
    return next(iter(result.backends)).split("/", 1)[1]


def routes(*docs: dict[str, Any]) -> str:
    """The documents as YAML, shared parts written out in full: labkit refuses YAML anchors
    and aliases (issue 9), which PyYAML would emit for a dict used twice."""
    import yaml

    class NoAliases(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return "---\n".join(yaml.dump(d, Dumper=NoAliases, sort_keys=False) for d in docs)


def http_route(name: str, rules: list[dict[str, Any]], *, ns: str = "infra",
               parents: list[dict[str, Any]] | None = None, hostnames: list[str] | None = None,
               created: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if created:
        meta["creationTimestamp"] = created
    spec: dict[str, Any] = {"parentRefs": parents if parents is not None else
                            [{"name": "same-namespace", "namespace": "infra"}], "rules": rules}
    if hostnames:
        spec["hostnames"] = hostnames
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": meta,
            "spec": spec}


def to(*names: str, port: int = 8080, **extra: Any) -> list[dict[str, Any]]:
    return [{"name": n, "port": port, **extra} for n in names]
