"""Core Kubernetes kinds the course reads from manifests: Namespace, Pod, Node,
Deployment, Service and Secret, as far as networking cares about them."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from labkit.model import (
    CILIUM_CLUSTER_LABEL,
    ContainerPort,
    Deployment,
    Namespace,
    Node,
    Pod,
    Secret,
    Service,
    ServicePort,
)
from labkit.policy.parse import (
    PORT_NAME_HINT,
    ParseContext,
    Parser,
    name_of,
    namespace_of,
    valid_port_name,
)

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _check_dns_label(ctx: ParseContext, value: str, field: str) -> None:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ctx.error(field, f"{value!r} is not a valid DNS label",
                        hint="lowercase letters, digits and '-', at most 63 characters")


def _container_ports(ctx: ParseContext, containers: Any, field: str) -> tuple[ContainerPort, ...]:
    ports: list[ContainerPort] = []
    for ci, c in enumerate(ctx.sequence(containers, field)):
        cmap = ctx.mapping(c, f"{field}[{ci}]")
        for pi, p in enumerate(ctx.sequence(cmap.get("ports"), f"{field}[{ci}].ports")):
            where = f"{field}[{ci}].ports[{pi}]"
            pmap = ctx.mapping(p, where, allowed=("name", "containerPort", "protocol",
                                                  "hostPort", "hostIP"))
            number = ctx.port_number(pmap.get("containerPort"), f"{where}.containerPort")
            name = ctx.string(pmap.get("name"), f"{where}.name")
            if name and not valid_port_name(name):
                raise ctx.error(f"{where}.name", f"{name!r} is not a valid port name",
                                hint=PORT_NAME_HINT)
            ports.append(ContainerPort(number, ctx.protocol(pmap.get("protocol"),
                                                            f"{where}.protocol"), name))
    return tuple(ports)


def _namespace(doc: dict[str, Any], ctx: ParseContext) -> list[Any]:
    name = name_of(doc)
    _check_dns_label(ctx, name, "metadata.name")
    return [Namespace(name, ctx.labels(doc["metadata"].get("labels"), "metadata.labels"))]


def _pod(doc: dict[str, Any], ctx: ParseContext) -> list[Any]:
    spec = ctx.mapping(doc.get("spec"), "spec")
    status = ctx.mapping(doc.get("status"), "status")
    ip = ctx.string(status.get("podIP"), "status.podIP")
    if ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError as exc:
            raise ctx.error("status.podIP", f"{ip!r} is not an IP address") from exc
    labels = ctx.labels(doc["metadata"].get("labels"), "metadata.labels")
    return [Pod(
        namespace=namespace_of(doc), name=name_of(doc), labels=labels, ip=ip,
        node=ctx.string(spec.get("nodeName"), "spec.nodeName"),
        ports=_container_ports(ctx, spec.get("containers"), "spec.containers"),
        service_account=ctx.string(spec.get("serviceAccountName"), "spec.serviceAccountName")
        or "default",
        host_network=bool(spec.get("hostNetwork", False)),
        # ClusterMesh: a pod of another cluster carries that cluster's name, as Cilium's
        # identity label does; a lone manifest has no other way to say where a pod runs.
        cluster=labels.get(CILIUM_CLUSTER_LABEL, "default"),
        containers=_container_names(spec.get("containers")),
    )]


def _node(doc: dict[str, Any], ctx: ParseContext) -> list[Any]:
    spec = ctx.mapping(doc.get("spec"), "spec")
    status = ctx.mapping(doc.get("status"), "status")
    ip = ""
    for i, a in enumerate(ctx.sequence(status.get("addresses"), "status.addresses")):
        entry = ctx.mapping(a, f"status.addresses[{i}]", allowed=("type", "address"))
        if entry.get("type") == "InternalIP" and not ip:
            ip = ctx.string(entry.get("address"), f"status.addresses[{i}].address")
    labels = ctx.labels(doc["metadata"].get("labels"), "metadata.labels")
    roles = tuple(sorted(k.split("/", 1)[1] for k in labels
                         if k.startswith("node-role.kubernetes.io/")))
    ready = any(isinstance(c, Mapping) and c.get("type") == "Ready" and c.get("status") == "True"
                for c in ctx.sequence(status.get("conditions"), "status.conditions"))
    return [Node(name_of(doc), ip, ctx.string(spec.get("podCIDR"), "spec.podCIDR"), ready, roles)]


def _deployment(doc: dict[str, Any], ctx: ParseContext) -> list[Any]:
    spec = ctx.mapping(doc.get("spec"), "spec")
    template = ctx.mapping(spec.get("template"), "spec.template")
    tmeta = ctx.mapping(template.get("metadata"), "spec.template.metadata")
    tspec = ctx.mapping(template.get("spec"), "spec.template.spec")
    replicas = spec.get("replicas", 1)
    replicas = ctx.integer(replicas, "spec.replicas", low=0, high=1000)
    labels = ctx.labels(tmeta.get("labels"), "spec.template.metadata.labels")
    selector = ctx.label_selector(spec.get("selector"), "spec.selector")
    if not selector.matches(labels):
        raise ctx.error("spec.selector", "selector does not match the template's labels",
                        hint="spec.selector.matchLabels must be a subset of the pod labels")
    containers = ctx.sequence(tspec.get("containers"), "spec.template.spec.containers")
    image = ""
    if containers and isinstance(containers[0], Mapping):
        image = str(containers[0].get("image", ""))
    return [Deployment(namespace_of(doc), name_of(doc), replicas, labels,
                       _container_ports(ctx, containers, "spec.template.spec.containers"), image,
                       _container_names(containers))]


def _container_names(containers: Any) -> tuple[str, ...]:
    """The containers' names (already checked as a list by _container_ports)."""
    return tuple(str(c.get("name", "")) for c in containers or () if isinstance(c, Mapping))


def _service(doc: dict[str, Any], ctx: ParseContext) -> list[Any]:
    spec = ctx.mapping(doc.get("spec"), "spec")
    ports: list[ServicePort] = []
    for i, p in enumerate(ctx.sequence(spec.get("ports"), "spec.ports")):
        where = f"spec.ports[{i}]"
        pmap = ctx.mapping(p, where, allowed=("name", "port", "targetPort", "protocol",
                                              "nodePort", "appProtocol"))
        number = ctx.port_number(pmap.get("port"), f"{where}.port")
        target = pmap.get("targetPort", number)
        if not isinstance(target, str):
            target = ctx.port_number(target, f"{where}.targetPort")
        node_port = pmap.get("nodePort")
        ports.append(ServicePort(
            number, target, ctx.protocol(pmap.get("protocol"), f"{where}.protocol"),
            ctx.string(pmap.get("name"), f"{where}.name"),
            ctx.integer(node_port, f"{where}.nodePort", low=1, high=65535)
            if node_port is not None else None))
    svc_type = ctx.string(spec.get("type"), "spec.type") or "ClusterIP"
    if svc_type not in ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"):
        raise ctx.error("spec.type", f"unsupported service type {svc_type!r}")
    meta = doc["metadata"]
    return [Service(namespace_of(doc), name_of(doc),
                    ctx.labels(spec.get("selector"), "spec.selector"), tuple(ports), svc_type,
                    ctx.string(spec.get("clusterIP"), "spec.clusterIP"),
                    annotations=ctx.labels(meta.get("annotations"), "metadata.annotations",
                                           values=False))]


def _secret(doc: dict[str, Any], ctx: ParseContext) -> list[Any]:
    data: dict[str, str] = {}
    for k, v in ctx.mapping(doc.get("data"), "data").items():
        try:
            data[str(k)] = base64.b64decode(str(v), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ctx.error(f"data.{k}", "is not valid base64",
                            hint="put plain text under stringData instead") from exc
    for k, v in ctx.mapping(doc.get("stringData"), "stringData").items():
        data[str(k)] = str(v)
    return [Secret(namespace_of(doc), name_of(doc), data)]


PARSERS: dict[tuple[str, str], Parser] = {
    ("v1", "Namespace"): _namespace,
    ("v1", "Pod"): _pod,
    ("v1", "Node"): _node,
    ("apps/v1", "Deployment"): _deployment,
    ("v1", "Service"): _service,
    ("v1", "Secret"): _secret,
}
