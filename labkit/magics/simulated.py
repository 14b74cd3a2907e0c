"""The sim half of the magics: a documented subset of kubectl, answered from the model.

What it answers (everything else gets one clear "outside the subset" message):

- ``get nodes|pods|services|deployments|namespaces|networkpolicies [NAME...]
  [-A] [-n NS] [-l SELECTOR] [-o wide|yaml|json|name]``
- ``describe node [NAME]``
- ``apply -f FILE|-`` and ``delete -f FILE|-`` (``-`` is the ``%%kubectl`` cell), and
  ``delete KIND NAME [-n NS]``
- ``exec POD|deploy/NAME [-n NS] [-c CONTAINER] -- curl [-sS] [-m N] [--connect-timeout N]
  [-X METHOD] [-H HEADER] [-o /dev/null] [-w '%{http_code}'] URL``

:mod:`.cli` reads the command line and :mod:`.objects` turns the simulated cluster into API
objects. Output is kubectl's own format (:mod:`labkit.display.kubectl`); input goes through the
Lab, so a manifest the API server would refuse is refused here with the same message.
``exec ... curl`` asks the backend's data plane (the policy engine restricted to the
installed CNI), so it agrees with ``lab.probe``. Which objects exist, their addresses and
their creation times come from the simulated cluster.
"""

from __future__ import annotations

import dataclasses
import platform
import shlex
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.backends.sim import SimBackend
from labkit.display import kubectl as fmt
from labkit.errors import LabkitError, UnknownKindError
from labkit.lab import documents
from labkit.magics.cli import Args, Resource, label_selector, parse_args, resource, resource_of
from labkit.magics.curl import curl
from labkit.magics.objects import ApiView, kubelet_version
from labkit.magics.output import Output, Unsupported
from labkit.policy.kinds import parse_one
from labkit.policy.parse import documents_of, namespace_of
from labkit.policy.state import identity

if TYPE_CHECKING:
    from labkit.backends.sim.cluster import SimCluster
    from labkit.lab import Lab
    from labkit.model import Pod

SUBSET = ("get nodes|pods|svc|deploy|ns|netpol [NAME] [-A] [-n NS] [-l SELECTOR] "
          "[-o wide|yaml|json|name]",
          "describe node [NAME]", "apply -f FILE|-", "delete -f FILE|-",
          "delete KIND NAME [-n NS]", "exec POD [-n NS] [-c C] -- curl [...] URL")


#: API versions every Kubernetes API server serves: a kind of these the model lacks (ConfigMap,
#: DaemonSet ...) is outside the subset, not refused as if its CRD were missing.
BUILTIN_APIS = ("v1", "apps/v1", "batch/v1", "networking.k8s.io/v1", "policy/v1",
                "rbac.authorization.k8s.io/v1", "autoscaling/v2", "storage.k8s.io/v1",
                "discovery.k8s.io/v1", "coordination.k8s.io/v1", "scheduling.k8s.io/v1")


class SimKubectl:
    """``kubectl`` against a Lab on the sim backend (``backend`` is the Lab's)."""

    def __init__(self, lab: Lab, backend: SimBackend, *,
                 now: Callable[[], float] = time.time) -> None:
        self.lab = lab
        self.backend = backend
        self.now = now

    @property
    def cluster(self) -> SimCluster:
        return self.backend.cluster

    @property
    def api(self) -> ApiView:
        return ApiView(self.cluster, self.now)

    def run(self, argv: Sequence[str], stdin: str | None = None) -> Output:
        try:
            args = parse_args(argv)
            verb = args.words[0] if args.words else ""
            handler = {"get": self._get, "describe": self._describe, "apply": self._apply,
                       "delete": self._delete, "exec": self._exec}.get(verb)
            if handler is None:
                raise Unsupported(f"`kubectl {verb}` is not modelled" if verb else
                                  "kubectl needs a command")
            return handler(args, stdin)
        except Unsupported as exc:
            return Output(stderr=outside_subset("kubectl", argv, exc.message), code=1)
        except LabkitError as exc:  # what the API server or kubectl would refuse
            hint = f"hint: {exc.hint}\n" if exc.hint else ""
            return Output(stderr=f"error: {exc.message}\n{hint}", code=1)

    # -- get -------------------------------------------------------------------------
    def _get(self, args: Args, stdin: str | None) -> Output:
        if len(args.words) < 2:
            raise Unsupported("`kubectl get` needs a resource type, e.g. `kubectl get pods`")
        res = resource(args.words[1])
        if res is None:
            raise Unsupported(f"the resource type {args.words[1]!r} is not modelled")
        names = args.words[2:]
        if "/" in args.words[1]:
            names = [args.words[1].split("/", 1)[1], *names]
        if args.output not in ("", "wide", "yaml", "json", "name"):
            raise Unsupported(f"-o {args.output} is not modelled")
        ns = self._namespace(args)
        items = self.api.objects(res, None if args.all_namespaces and not names else ns)
        if args.selector:
            wanted = label_selector(args.selector)
            items = [i for i in items if wanted.matches(i["metadata"].get("labels") or {})]
        if names:
            found = {i["metadata"]["name"]: i for i in items}
            missing = [n for n in names if n not in found]
            if missing:
                return Output(stderr="".join(
                    f'Error from server (NotFound): {res.plural_qualified} "{n}" not found\n'
                    for n in missing), code=1)
            items = [found[n] for n in names]
        if args.output in ("yaml", "json"):
            doc = items[0] if len(names) == 1 else fmt.as_list(items)
            return Output(fmt.to_yaml(doc) if args.output == "yaml" else fmt.to_json(doc))
        if args.output == "name":
            return Output("".join(f"{res.qualified}/{i['metadata']['name']}\n" for i in items))
        if not items:
            where = "" if not res.namespaced or args.all_namespaces else f" in {ns} namespace"
            return Output(stderr=f"No resources found{where}.\n")
        header, rows = self._table(res, items, wide=args.output == "wide")
        if res.namespaced and args.all_namespaces:
            header = ["NAMESPACE", *header]
            rows = [[i["metadata"]["namespace"], *r] for i, r in zip(items, rows, strict=True)]
        return Output(fmt.table(header, rows))

    def _namespace(self, args: Args) -> str:
        return args.namespace or "default"  # kind's context names no namespace

    # -- tables ------------------------------------------------------------------------
    def _age(self, obj: dict[str, Any]) -> str:
        meta = obj["metadata"]
        created = self.cluster.created_at(obj["kind"], meta.get("namespace", ""), meta["name"])
        return fmt.age(created, self.now())

    def _table(self, res: Resource, items: list[dict[str, Any]], *, wide: bool
               ) -> tuple[list[str], list[list[str]]]:
        rows: list[list[str]] = []
        if res.kind == "Node":
            header = ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
            if wide:
                header += ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION",
                           "CONTAINER-RUNTIME"]
            for o in items:
                n = self.cluster.nodes[o["metadata"]["name"]]
                row = [n.name, "Ready" if n.ready else "NotReady", ",".join(n.roles) or "<none>",
                       self._age(o), kubelet_version()]
                if wide:  # the OS image and runtime are not modelled: kubectl's own blank
                    row += [n.ip, "<none>", "<unknown>", platform.release(), "<unknown>"]
                rows.append(row)
        elif res.kind == "Namespace":
            header = ["NAME", "STATUS", "AGE"]
            rows = [[o["metadata"]["name"], "Active", self._age(o)] for o in items]
        elif res.kind == "Pod":
            header = ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
            if wide:
                header += ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
            for o in items:
                total = len(o["spec"]["containers"])
                up = len(o["status"].get("containerStatuses", []))
                st = o["status"]
                row = [o["metadata"]["name"], f"{up}/{total}", st["phase"], "0", self._age(o)]
                if wide:
                    row += [st.get("podIP") or "<none>", o["spec"].get("nodeName") or "<none>",
                            "<none>", "<none>"]
                rows.append(row)
        elif res.kind == "Service":
            header = ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
            if wide:
                header.append("SELECTOR")
            for o in items:
                spec = o["spec"]
                ingress = o["status"]["loadBalancer"].get("ingress") or []
                external = ",".join(i["ip"] for i in ingress) or \
                    ("<pending>" if spec["type"] == "LoadBalancer" else "<none>")
                ports = ",".join(
                    f"{p['port']}{':' + str(p['nodePort']) if 'nodePort' in p else ''}/"
                    f"{p['protocol']}" for p in spec["ports"]) or "<none>"
                row = [o["metadata"]["name"], spec["type"], spec["clusterIP"], external, ports,
                       self._age(o)]
                if wide:
                    row.append(fmt.labels(spec.get("selector") or {}))
                rows.append(row)
        elif res.kind == "Deployment":
            header = ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
            for o in items:
                st = o["status"]
                rows.append([o["metadata"]["name"], f"{st['readyReplicas']}/{st['replicas']}",
                             str(st["updatedReplicas"]), str(st["availableReplicas"]),
                             self._age(o)])
        else:  # NetworkPolicy
            header = ["NAME", "POD-SELECTOR", "AGE"]
            rows = [[o["metadata"]["name"], fmt.label_selector(o["spec"].get("podSelector")),
                     self._age(o)] for o in items]
        return header, rows

    # -- describe --------------------------------------------------------------------
    def _describe(self, args: Args, stdin: str | None) -> Output:
        res = resource(args.words[1]) if len(args.words) > 1 else None
        if res is None or res.kind != "Node":
            raise Unsupported("only `kubectl describe node [NAME]` is modelled")
        names = args.words[2:] or sorted(self.cluster.nodes)
        missing = [n for n in names if n not in self.cluster.nodes]
        if missing:
            return Output(stderr=f'Error from server (NotFound): nodes "{missing[0]}" '
                          "not found\n", code=1)
        return Output("\n\n".join(self._describe_node(n) for n in names) + "\n")

    def _describe_node(self, name: str) -> str:
        node = self.api.node(name)
        n = self.cluster.nodes[name]
        meta, spec, status = node["metadata"], node["spec"], node["status"]
        created = self.cluster.created_at("Node", "", name)

        def block(title: str, values: Sequence[str]) -> list[str]:
            values = list(values) or ["<none>"]
            return [f"{title + ':':<20}{values[0]}", *[" " * 20 + v for v in values[1:]]]

        lines = [f"{'Name:':<20}{name}", f"{'Roles:':<20}{','.join(n.roles) or '<none>'}"]
        lines += block("Labels", [f"{k}={v}" for k, v in sorted(meta["labels"].items())])
        lines += block("Annotations", [])
        lines.append(f"{'CreationTimestamp:':<20}"
                     f"{fmt.describe_time(created) if created is not None else '<unset>'}")
        lines += block("Taints", [f"{t['key']}:{t['effect']}" for t in spec.get("taints", [])])
        lines.append(f"{'Unschedulable:':<20}false")
        lines += ["Conditions:", *fmt.describe_table(
            ["Type", "Status", "LastHeartbeatTime", "LastTransitionTime", "Reason", "Message"],
            [[c["type"], c["status"], _rfc1123(c["lastHeartbeatTime"]),
              _rfc1123(c["lastTransitionTime"]), c["reason"], c["message"]]
             for c in status["conditions"]])]
        lines += ["Addresses:", f"  InternalIP:  {n.ip}", f"  Hostname:    {name}"]
        lines += [f"{'PodCIDR:':<20}{n.pod_cidr or '<none>'}"] if n.pod_cidr else []
        lines += block("PodCIDRs", [n.pod_cidr] if n.pod_cidr else [])
        pods = sorted((sp.pod for sp in self.cluster.pods.values() if sp.pod.node == name),
                      key=lambda p: (p.namespace, p.name))
        lines.append(f"Non-terminated Pods:          ({len(pods)} in total)")
        if pods:
            lines += fmt.describe_table(["Namespace", "Name", "Age"], [
                [p.namespace, p.name,
                 fmt.age(self.cluster.created_at("Pod", p.namespace, p.name), self.now())]
                for p in pods])
        lines.append("Events:              <none>")
        return "\n".join(lines)

    # -- apply / delete --------------------------------------------------------------
    def _manifests(self, args: Args, stdin: str | None) -> list[tuple[str, dict[str, Any]]]:
        if not args.files:
            raise Unsupported("apply/delete need -f FILE (or -f - with the YAML in the cell)")
        docs: list[tuple[str, dict[str, Any]]] = []
        for f in args.files:
            if f == "-":
                if not stdin or not stdin.strip():
                    raise LabkitError("no objects passed to apply",
                                      hint="put the YAML in the %%kubectl cell")
                docs += documents_of(stdin, "STDIN")
            elif f.startswith(("http://", "https://")):
                raise Unsupported("-f with a URL is not modelled (the sim cannot download)")
            else:
                docs += documents(Path(f))
        return docs

    def _apply(self, args: Args, stdin: str | None) -> Output:
        docs = self._manifests(args, stdin)
        before = []
        for source, doc in docs:
            try:
                objs = parse_one(doc, source)  # refused here exactly as lab.apply refuses it
            except UnknownKindError as exc:
                if str(doc.get("apiVersion", "")) in BUILTIN_APIS:
                    raise Unsupported(f"the sim does not model {doc.get('kind')} objects (a "
                                      "real API server serves them)") from exc
                raise
            before.append(self._fingerprint(doc, objs))
        self.lab.apply([d for _, d in docs])
        out = []
        for (_, doc), old in zip(docs, before, strict=True):
            new = self._fingerprint(doc, None)
            verb = "created" if old is None else ("unchanged" if old == new else "configured")
            res = resource_of(str(doc.get("apiVersion", "")), str(doc.get("kind", "")))
            out.append(f"{res.qualified}/{doc['metadata']['name']} {verb}\n")
        return Output("".join(out))

    def _fingerprint(self, doc: dict[str, Any], objs: list[Any] | None) -> Any:
        """What the cluster holds under this manifest's name now (None: nothing)."""
        c = self.cluster
        kind, name = doc.get("kind"), doc["metadata"]["name"]
        ns = namespace_of(doc)
        stored: Any = {"Namespace": c.namespaces.get(name),
                       "Deployment": (c.deployments.get(f"{ns}/{name}") or (None,))[0],
                       "Service": c.services.get(f"{ns}/{name}"),
                       "Pod": self._pod_named(ns, name)}.get(str(kind))
        if kind in ("Namespace", "Deployment", "Service", "Pod"):
            if stored is None:
                return None
            volatile = {"ip", "node", "cluster_ip", "external_ip"}
            return {k: v for k, v in dataclasses.asdict(stored).items() if k not in volatile}
        objs = objs if objs is not None else parse_one(doc, "<applied>")
        keys = [identity(o) for o in objs]
        docs = [c.policy_docs.get(k) for k in keys]
        return None if any(d is None for d in docs) else docs

    def _delete(self, args: Args, stdin: str | None) -> Output:
        if args.files:
            return self._delete_manifests(args, stdin)
        if len(args.words) < 3:
            raise Unsupported("delete needs -f FILE, or KIND NAME")
        res = resource(args.words[1])
        if res is None or res.kind == "Node":
            raise Unsupported(f"deleting {args.words[1]!r} is not modelled")
        ns = self._namespace(args)
        out, err = [], []
        for name in args.words[2:]:
            obj = self._stored(res, ns, name)
            if obj is None:
                err.append(f'Error from server (NotFound): {res.plural_qualified} "{name}" '
                           "not found\n")
                continue
            self.backend.delete([], [obj])
            out.append(deleted_line(res, name, ns))
        return Output("".join(out), "".join(err), 1 if err else 0)

    def _stored(self, res: Resource, ns: str, name: str) -> Any:
        c = self.cluster
        if res.kind == "NetworkPolicy":
            return next((p for p in c.policies
                         if identity(p) == ("NetworkPolicy", ns, name)), None)
        return {"Namespace": lambda: c.namespaces.get(name),
                "Pod": lambda: self._pod_named(ns, name),
                "Service": lambda: c.services.get(f"{ns}/{name}"),
                "Deployment": lambda: (c.deployments.get(f"{ns}/{name}") or (None,))[0],
                }[res.kind]()

    def _pod_named(self, namespace: str, name: str) -> Pod | None:
        sp = self.cluster.pods.get(f"{namespace}/{name}")
        return sp.pod if sp is not None else None

    def _delete_manifests(self, args: Args, stdin: str | None) -> Output:
        docs = self._manifests(args, stdin)
        present = [self._fingerprint(d, None) is not None for _, d in docs]
        self.lab.delete([d for _, d in docs])
        out, err = [], []
        for (source, doc), was in zip(docs, present, strict=True):
            res = resource_of(str(doc.get("apiVersion", "")), str(doc.get("kind", "")))
            name, ns = doc["metadata"]["name"], namespace_of(doc)
            if was:
                out.append(deleted_line(res, name, ns))
            else:
                err.append(f'Error from server (NotFound): error when deleting "{source}": '
                           f'{res.plural_qualified} "{name}" not found\n')
        return Output("".join(out), "".join(err), 1 if err else 0)

    # -- exec ... curl -----------------------------------------------------------------
    def _exec(self, args: Args, stdin: str | None) -> Output:
        if len(args.words) != 2 or not args.after_dashes:
            raise Unsupported("exec needs POD -- COMMAND, e.g. "
                              "`kubectl exec -n shop-web deploy/frontend -- curl -s URL`")
        ns = self._namespace(args)
        pod = self._exec_target(args.words[1], ns)
        if isinstance(pod, Output):
            return pod
        notice = ""
        names = pod.containers
        if args.container and names and args.container not in names:
            return Output(stderr=f"Error from server (BadRequest): container "
                          f"{args.container} is not valid for pod {pod.name}\n", code=1)
        if not args.container and len(names) > 1:
            notice = f'Defaulted container "{names[0]}" out of: {", ".join(names)}\n'
        command = args.after_dashes
        if command[:1] != ["curl"]:
            raise Unsupported(f"only curl runs in the simulated pods, not {command[0]!r}")
        out = curl(self.backend, pod, command[1:])
        code_line = f"command terminated with exit code {out.code}\n" if out.code else ""
        return Output(out.stdout, out.stderr + code_line, out.code, notice)

    def _exec_target(self, target: str, ns: str) -> Pod | Output:
        kind, _, name = target.rpartition("/")
        c = self.cluster
        if kind in ("deploy", "deployment", "deployments", "deployment.apps"):
            if f"{ns}/{name}" not in c.deployments:
                return Output(stderr=f'Error from server (NotFound): deployments.apps "{name}" '
                              "not found\n", code=1)
            running = sorted(sp.pod.name for sp in c.pods.values()
                             if sp.owner == f"Deployment {ns}/{name}" and sp.phase == "Running")
            if not running:
                return Output(stderr="error: unable to find a running pod of deployment "
                              f"{name} [simulated: its pods are Pending]\n", code=1)
            name = running[0]
        elif kind not in ("", "pod", "pods", "po"):
            raise Unsupported(f"exec into {target!r} is not modelled (use a pod or deploy/NAME)")
        sp = c.pods.get(f"{ns}/{name}")
        if sp is None:
            return Output(stderr=f'Error from server (NotFound): pods "{name}" not found\n',
                          code=1)
        if sp.phase != "Running":
            return Output(stderr=f"error: unable to upgrade connection: pod {name} is "
                          f"{sp.phase} [simulated: {sp.reason or 'not running'}]\n", code=1)
        return sp.pod


def _rfc1123(stamp: str) -> str:
    """An API timestamp (``2025-06-15T15:06:40Z``) as describe prints it."""
    return fmt.describe_time(datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")
                             .replace(tzinfo=UTC).timestamp())


def deleted_line(res: Resource, name: str, namespace: str) -> str:
    """kubectl >= 1.34 names the namespace of what it deleted (kubernetes/kubernetes#126619)."""
    where = f" from {namespace} namespace" if res.namespaced else ""
    return f'{res.qualified} "{name}" deleted{where}\n'


def outside_subset(tool: str, argv: Sequence[str], why: str) -> str:
    """The one message for anything the sim does not answer."""
    lines = [f"[simulated] `{tool} {shlex.join(argv)}`: {why}."]
    if tool == "kubectl":
        lines.append("The simulated cluster answers: " + "; ".join(
            f"kubectl {s}" for s in SUBSET) + ".")
    lines.append('With BACKEND = "kind" the real command runs against the lab\'s kind cluster.')
    return "\n".join(lines) + "\n"
