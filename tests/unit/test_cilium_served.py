"""Names a lab serves itself (labkit.cni.cilium.served): the Corefile edit and the kind steps,
on fakes. No kind cluster runs here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labkit.cni.cilium import recipe as cilium
from labkit.environments import pinned
from labkit.tools import coredns
from labkit.tools.process import Result
from tests.unit.test_cilium_recipe import CiliumRunner, cilium_kube, kubeconfig, make

__all__ = ["kubeconfig"]  # the fixture, used by name

# kind v0.33's CoreDNS Corefile (kubeadm's default).
COREFILE = """.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
"""


def test_hosts_block_goes_into_the_server_block_and_is_replaced_as_a_whole() -> None:
    one = coredns.with_hosts(COREFILE, {"catalog.shop.test": "172.18.0.5"})
    assert one.startswith(".:53 {\n    " + coredns.BEGIN + "\n    hosts {\n"
                          "        172.18.0.5 catalog.shop.test\n        fallthrough\n    }")
    assert coredns.hosts_of(one) == {"catalog.shop.test": "172.18.0.5"}
    two = coredns.with_hosts(one, {"catalog.shop.test": "172.18.0.5",
                                  "ads.tracker.test": "172.18.0.6"})
    assert two.count("hosts {") == 1 and two.count(coredns.BEGIN) == 1
    assert coredns.hosts_of(two) == {"catalog.shop.test": "172.18.0.5",
                                    "ads.tracker.test": "172.18.0.6"}
    assert coredns.with_hosts(two, {}) == COREFILE  # removing the names restores the original
    assert "kubernetes cluster.local" in two and two.rstrip().endswith("}")


class ServingRunner(CiliumRunner):
    """docker inspect fails until docker run created the container."""

    def __init__(self) -> None:
        super().__init__(set())
        self.containers: dict[str, str] = {}

    def __call__(self, argv: list[str], **kwargs: Any) -> Result:
        if argv[:2] == ["docker", "run"]:
            self.calls.append(list(argv))
            ip = f"172.18.0.{10 + len(self.containers)}"
            self.containers[argv[argv.index("--name") + 1]] = ip
            return Result(tuple(argv), 0, "abc123\n", "")
        if argv[:2] == ["docker", "inspect"]:
            self.calls.append(list(argv))
            ip = self.containers.get(argv[-1])
            return Result(tuple(argv), 0 if ip else 1, f"{ip}\n" if ip else "",
                          "" if ip else f"Error: No such object: {argv[-1]}\n")
        return super().__call__(argv, **kwargs)


def test_serve_on_kind_starts_a_server_and_points_coredns_at_it(tmp_path: Path,
                                                                 kubeconfig: Any) -> None:
    kube = cilium_kube()
    kube.add("ConfigMap", {"metadata": {"name": "coredns", "namespace": "kube-system"},
                           "data": {"Corefile": COREFILE}})
    run = ServingRunner()
    backend = make(tmp_path, kubeconfig, run, kube)
    ip = cilium.RECIPE.serve_name(backend, "catalog.shop.test")
    assert ip == "172.18.0.10"
    started = [c for c in run.calls if c[:2] == ["docker", "run"]]
    assert started == [["docker", "run", "-d", "--name",
                        "cni-lab-cilium-served-catalog-shop-test", "--network", "kind",
                        "--label", "io.labkit.cluster=cni-lab-cilium",
                        pinned("images", "agnhost"), "netexec", "--http-port=80"]]
    cm = next(d for d in kube.applied if d["kind"] == "ConfigMap")
    assert coredns.hosts_of(cm["data"]["Corefile"]) == {"catalog.shop.test": "172.18.0.10"}
    restart = next(d for d in kube.applied if d["kind"] == "Deployment")
    assert restart["metadata"] == {"name": "coredns", "namespace": "kube-system"}
    # a second call reuses the container and changes nothing in CoreDNS
    kube.objects[("", "ConfigMap")] = [cm]
    applied = len(kube.applied)
    assert cilium.RECIPE.serve_name(backend, "catalog.shop.test") == "172.18.0.10"
    assert len([c for c in run.calls if c[:2] == ["docker", "run"]]) == 1
    assert len(kube.applied) == applied
    # the backend's state knows the name, so the policy engine can judge toFQDNs on kind
    assert backend.state().dns_names == {"catalog.shop.test": ("172.18.0.10",)}


def test_down_removes_the_served_containers(tmp_path: Path, kubeconfig: Any) -> None:
    class Listing(ServingRunner):
        def __call__(self, argv: list[str], **kwargs: Any) -> Result:
            if argv[:3] == ["docker", "ps", "-aq"]:
                self.calls.append(list(argv))
                return Result(tuple(argv), 0, "abc123\ndef456\n", "")
            return super().__call__(argv, **kwargs)

    run = Listing()
    backend = make(tmp_path, kubeconfig, run, cilium_kube())
    backend._record(tmp_path / "kind-config.yaml")  # labkit deletes only clusters it created
    backend.down()
    assert ["docker", "ps", "-aq", "--filter",
            "label=io.labkit.cluster=cni-lab-cilium"] in run.calls
    assert ["docker", "rm", "-f", "abc123", "def456"] in run.calls
    assert run.calls[-1] == ["kind", "delete", "cluster", "--name", "cni-lab-cilium"]
