"""Endpoint keys that can name a cluster (for ClusterMesh): ``cluster:namespace/pod``.

A key without a cluster means the local one, as before; a key naming the engine's own
cluster means the same pod; a key naming another cluster is refused with a reason,
since one engine judges one cluster's state.
"""

from __future__ import annotations

import pytest

from labkit.errors import ManifestError
from labkit.model import Traffic, endpoint_key, parse_endpoint, split_cluster
from labkit.policy import Engine, build_state, parse_text
from tests.manifests import manifest, namespace, pod

SHOP = manifest(
    namespace("shop-api", {}),
    pod("shop-api", "api", {"app": "api"}, ports={"http": 8080}),
    pod("shop-api", "db", {"app": "db"}),
    pod("shop-api", "cache", {"app": "cache"}),
)
DB_FROM_API = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-from-api, namespace: shop-api}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress: [{from: [{podSelector: {matchLabels: {app: api}}}]}]
"""


def test_keys_with_and_without_a_cluster() -> None:
    assert endpoint_key("shop-api", "db") == "shop-api/db"
    assert endpoint_key("shop-api", "db", "cluster-b") == "cluster-b:shop-api/db"
    assert split_cluster("cluster-b:shop-api/db") == ("cluster-b", "shop-api/db")
    assert split_cluster("shop-api/db") == ("", "shop-api/db")
    assert parse_endpoint("cluster-b:shop-api/db") == ("pod", "cluster-b:shop-api/db")
    assert parse_endpoint("shop-api/db") == ("pod", "shop-api/db")  # unchanged
    assert parse_endpoint("ip:fd00::1") == ("ip", "fd00::1")  # ip: wins over a cluster prefix


@pytest.mark.parametrize("text", ["Cluster_B:shop-api/db", ":shop-api/db", "b:shop-api",
                                  "a:b:shop-api/db", "b:shop-api/db/x"])
def test_malformed_keys_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_endpoint(text)


def test_the_engine_reads_its_own_cluster_name_as_local_and_refuses_others() -> None:
    state = build_state(parse_text(SHOP + "\n---\n" + DB_FROM_API), name="cluster-a")
    engine = Engine(state, "kindnet")
    local = engine.evaluate(Traffic("shop-api/api", "shop-api/db", 5432))
    named = engine.evaluate(Traffic("cluster-a:shop-api/api", "cluster-a:shop-api/db", 5432))
    assert local.allowed and named.allowed
    assert not engine.evaluate(Traffic("cluster-a:shop-api/cache", "shop-api/db", 5432)).allowed
    itself = engine.evaluate(Traffic("cluster-a:shop-api/db", "shop-api/db", 5432))
    assert "traffic from a pod to itself" in itself.reasons[0]  # the same pod, both spellings
    with pytest.raises(ManifestError, match="is in cluster cluster-b; this engine judges "
                       "cluster cluster-a"):
        engine.evaluate(Traffic("cluster-b:shop-api/api", "shop-api/db", 5432))
