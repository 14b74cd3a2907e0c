"""MetalLB: the pool from the kind network, the exact objects, how the LB IP is reached."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from labkit.addons import metallb
from labkit.errors import ClusterError, ManifestError
from labkit.tools import docker
from labkit.tools.process import Result

GO_FORM = ("[{172.20.0.0/16  172.20.0.1 map[]} {fc00:f853:ccd:e793::/64  fc00:f853:ccd:e793::1 "
           "map[]}]")  # samples/docker-network/docker_network_inspect_format_IPAM_Config_...txt


@pytest.mark.parametrize("subnet, expected", [
    ("172.18.0.0/16", ("172.18.255.200", "172.18.255.250")),   # kind's usual network
    ("172.20.0.0/16", ("172.20.255.200", "172.20.255.250")),
    ("10.89.0.0/24", ("10.89.0.200", "10.89.0.250")),
    ("192.168.0.0/20", ("192.168.15.200", "192.168.15.250")),
])
def test_pool_range_is_200_to_250_of_the_last_24(subnet, expected):
    assert metallb.pool_range(subnet) == expected


def test_pool_from_the_parsed_kind_network_sample():
    subnet = docker.ipv4_subnet(docker.parse_ipam_config(GO_FORM))  # the IPv6 entry is skipped
    assert metallb.pool_range(subnet) == ("172.20.255.200", "172.20.255.250")


@pytest.mark.parametrize("subnet", ["172.18.0.0/25", "fc00::/64"])
def test_pool_range_refuses_small_or_ipv6_networks(subnet):
    with pytest.raises(ClusterError) as err:
        metallb.pool_range(subnet)
    assert err.value.hint


def test_pool_documents_are_exactly_these():
    assert metallb.pool_documents("172.18.0.0/16") == [
        {"apiVersion": "metallb.io/v1beta1", "kind": "IPAddressPool",
         "metadata": {"name": "kind-pool", "namespace": "metallb-system"},
         "spec": {"addresses": ["172.18.255.200-172.18.255.250"]}},
        {"apiVersion": "metallb.io/v1beta1", "kind": "L2Advertisement",
         "metadata": {"name": "kind-l2", "namespace": "metallb-system"},
         "spec": {"ipAddressPools": ["kind-pool"]}},
    ]


def test_frontend_service_is_a_loadbalancer_for_the_frontend():
    svc = metallb.frontend_service()
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["spec"]["selector"] == {"app": "frontend"}
    assert svc["metadata"] == {"name": "frontend-lb", "namespace": "shop-web"}


def test_external_ip_of_status():
    assert metallb.external_ip_of({"status": {"loadBalancer": {}}}) == ""  # <pending>
    assert metallb.external_ip_of(None) == ""
    svc = {"status": {"loadBalancer": {"ingress": [{"ip": "172.18.255.200", "ipMode": "VIP"}]}}}
    assert metallb.external_ip_of(svc) == "172.18.255.200"


def test_addresses_of_ranges_and_cidrs():
    pool = {"spec": {"addresses": ["172.18.255.200-172.18.255.202", "10.0.0.0/31"]}}
    assert metallb.addresses_of(pool) == ["172.18.255.200", "172.18.255.201", "172.18.255.202",
                                          "10.0.0.0", "10.0.0.1"]


class _Runner:
    def __init__(self, stdout="200", rc=0):
        self.calls: list[list[str]] = []
        self.stdout, self.rc = stdout, rc

    def __call__(self, argv, **kw):
        self.calls.append(list(argv))
        return Result(tuple(argv), self.rc, self.stdout, "" if self.rc == 0 else "timed out")


class _KindLike:
    name = "kind"
    simulated = False

    def dispatch(self, *, sim: Any, kind: Any) -> Any:  # Backend.dispatch, as KindBackend does
        return kind(self)


NATIVE = {"OperatingSystem": "Ubuntu 24.04", "Name": "laptop"}
DESKTOP = {"OperatingSystem": "Docker Desktop", "Name": "docker-desktop"}


def test_reach_from_the_host_on_native_linux(monkeypatch):
    monkeypatch.setattr(metallb.process, "which", lambda tool: "/usr/bin/curl")
    run = _Runner("200")
    r = metallb.reach(_KindLike(), "172.18.255.200", info=NATIVE, system="Linux", run=run)
    assert run.calls == [["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5",
                          "http://172.18.255.200:80/"]]
    assert r.ok and r.status == 200 and r.via == "host" and not r.simulated


def test_reach_from_a_kind_network_container_on_docker_desktop():
    run = _Runner("200")
    r = metallb.reach(_KindLike(), "172.18.255.200", info=DESKTOP, system="Darwin", run=run)
    assert run.calls == [["docker", "run", "--rm", "--network", "kind", "curlimages/curl:8.16.0",
                          "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5",
                          "http://172.18.255.200:80/"]]
    assert r.ok and r.via == "container on the kind network"
    assert "VM" in r.reason and "VM" in r.to_text()


def test_reach_failure_is_reported_not_raised():
    run = _Runner("000", rc=28)
    r = metallb.reach(_KindLike(), "172.18.255.201", info=DESKTOP, system="Linux", run=run)
    assert not r.ok and r.status == 0 and "timed out" in r.detail
    assert r.as_dict()["ok"] is False


class _FakeKindBackend:
    name = "kind"
    simulated = False

    def dispatch(self, *, sim: Any, kind: Any) -> Any:  # Backend.dispatch, as KindBackend does
        return kind(self)

    def __init__(self, fail_webhook: int = 0) -> None:
        self.applied: list[list[dict[str, Any]]] = []
        self.waits: list[tuple[str, ...]] = []
        self.fail_webhook = fail_webhook

    def apply_raw(self, docs):
        if docs and docs[0].get("kind") == "IPAddressPool" and self.fail_webhook:
            self.fail_webhook -= 1
            raise ClusterError('Internal error occurred: failed calling webhook '
                               '"ipaddresspoolvalidationwebhook.metallb.io": connection refused')
        self.applied.append(list(docs))
        return []

    def wait_daemonset(self, ns, name, **kw):
        self.waits.append(("daemonset", ns, name))

    def wait_ready(self, **kw):
        self.waits.append(("ready", *kw.get("namespaces", ())))


MANIFEST = """apiVersion: v1
kind: Namespace
metadata: {name: metallb-system}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: speaker, namespace: metallb-system}
"""


def test_install_on_kind_applies_pinned_manifest_then_pool_retrying_the_webhook():
    backend = _FakeKindBackend(fail_webhook=2)
    urls: list[str] = []
    sleeps: list[float] = []
    pool = metallb.install(backend, fetch=lambda u: urls.append(u) or MANIFEST,
                           subnet="172.18.0.0/16", sleep=sleeps.append)
    assert urls == ["https://raw.githubusercontent.com/metallb/metallb/v0.16.1/config/manifests/"
                    "metallb-native.yaml"]
    assert [d["kind"] for d in backend.applied[0]] == ["Namespace", "DaemonSet"]
    assert backend.applied[1] == pool == metallb.pool_documents("172.18.0.0/16")
    assert backend.waits == [("daemonset", "metallb-system", "speaker"),
                             ("ready", "metallb-system")]
    assert len(sleeps) == 2


def test_install_on_kind_gives_up_on_other_errors():
    class Broken(_FakeKindBackend):
        def apply_raw(self, docs):
            if docs and docs[0].get("kind") == "IPAddressPool":
                raise ManifestError("the API server refused it: spec.addresses: invalid")
            return []

    with pytest.raises(ManifestError, match="invalid"):
        metallb.install(Broken(), fetch=lambda u: MANIFEST, subnet="172.18.0.0/16",
                        sleep=lambda s: None)


def test_sim_allocator_is_sticky_and_frees_addresses():
    from labkit.model import Service

    class C:
        services: dict[str, Service] = {}

    c = C()
    c.services = {"a/x": Service("a", "x", type="LoadBalancer"),
                  "a/y": Service("a", "y", type="LoadBalancer"),
                  "a/z": Service("a", "z")}
    alloc = metallb.SimAllocator(["172.18.255.200", "172.18.255.201"])
    alloc(c)
    assert c.services["a/x"].external_ip == "172.18.255.200"
    assert c.services["a/y"].external_ip == "172.18.255.201"
    assert c.services["a/z"].external_ip == ""
    c.services["a/w"] = Service("a", "w", type="LoadBalancer")
    alloc(c)
    assert c.services["a/w"].external_ip == ""  # pool exhausted: stays <pending>
    del c.services["a/x"]
    alloc(c)
    assert c.services["a/w"].external_ip == "172.18.255.200"
    assert ipaddress.ip_address(c.services["a/y"].external_ip)  # unchanged
