"""kubectl's command line, as far as the simulated subset reads it: resource names and
their aliases, the flags, and label selectors (``-l``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from labkit.errors import LabkitError
from labkit.magics.output import Unsupported
from labkit.policy.selectors import LabelSelector, Requirement


@dataclass(frozen=True)
class Resource:
    """A kind kubectl knows: its plural, API group, scope and the names a learner may type."""

    kind: str
    plural: str
    group: str
    namespaced: bool
    aliases: tuple[str, ...]

    @property
    def qualified(self) -> str:
        """``networkpolicy.networking.k8s.io``: how apply/delete name the kind."""
        return self.kind.lower() + (f".{self.group}" if self.group else "")

    @property
    def plural_qualified(self) -> str:
        return self.plural + (f".{self.group}" if self.group else "")


RESOURCES = (
    Resource("Node", "nodes", "", False, ("node", "no")),
    Resource("Namespace", "namespaces", "", False, ("namespace", "ns")),
    Resource("Pod", "pods", "", True, ("pod", "po")),
    Resource("Service", "services", "", True, ("service", "svc")),
    Resource("Deployment", "deployments", "apps", True, ("deployment", "deploy")),
    Resource("NetworkPolicy", "networkpolicies", "networking.k8s.io", True,
             ("networkpolicy", "netpol")),
)


def resource(word: str) -> Resource | None:
    """The resource a learner means by ``pods``, ``po``, ``pod``, ``pods.`` or ``svc/api``."""
    word = word.lower().split("/")[0]
    for r in RESOURCES:
        if word in (r.plural, r.plural_qualified, r.qualified, *r.aliases):
            return r
    return None


def resource_of(api_version: str, kind: str) -> Resource:
    """The resource of a manifest (any kind: CRDs get their plural by English rules)."""
    group = api_version.split("/")[0] if "/" in api_version else ""
    for r in RESOURCES:
        if r.kind == kind and r.group == group:
            return r
    low = kind.lower()
    plural = low[:-1] + "ies" if low.endswith("y") else low + ("es" if low.endswith("s") else "s")
    return Resource(kind, plural, group, kind not in ("GlobalNetworkPolicy",
                                                      "CiliumClusterwideNetworkPolicy", "Tier",
                                                      "IPPool"), ())


@dataclass
class Args:
    """kubectl's command line, split into words and the flags the subset knows."""

    words: list[str] = field(default_factory=list)
    namespace: str = ""
    all_namespaces: bool = False
    output: str = ""
    files: list[str] = field(default_factory=list)
    container: str = ""
    selector: str = ""
    after_dashes: list[str] = field(default_factory=list)


VALUE_FLAGS = {"-n": "namespace", "--namespace": "namespace", "-o": "output",
               "--output": "output", "-f": "files", "--filename": "files",
               "-c": "container", "--container": "container", "-l": "selector",
               "--selector": "selector"}
BOOL_FLAGS = {"-A": "all_namespaces", "--all-namespaces": "all_namespaces",
              "-i": "", "--stdin": "", "-t": "", "--tty": "", "-it": "", "-ti": ""}


def parse_args(argv: Sequence[str]) -> Args:
    args = Args()
    words = list(argv)
    if "--" in words:
        cut = words.index("--")
        words, args.after_dashes = words[:cut], words[cut + 1:]
    i = 0
    while i < len(words):
        word = words[i]
        flag, value = word, ""
        if word.startswith("--") and "=" in word:
            flag, value = word.split("=", 1)
        elif word in VALUE_FLAGS:
            value = words[i + 1] if i + 1 < len(words) else ""
            i += 1
        elif word[:2] in VALUE_FLAGS and len(word) > 2:  # -nshop-api, -owide, -o=wide
            flag, value = word[:2], word[2:].removeprefix("=")
        if flag in VALUE_FLAGS:
            if not value:
                raise Unsupported(f"flag needs an argument: {word!r}",
                                  hint="e.g. -n shop-api, -o wide, -f policy.yaml")
            if VALUE_FLAGS[flag] == "files":
                args.files.append(value)
            else:
                setattr(args, VALUE_FLAGS[flag], value)
        elif word in BOOL_FLAGS:
            if BOOL_FLAGS[word]:
                setattr(args, BOOL_FLAGS[word], True)
        elif word.startswith("-"):
            raise Unsupported(f"the flag {word!r} is not modelled")
        else:
            args.words.append(word)
        i += 1
    return args


def label_selector(text: str) -> LabelSelector:
    """``-l`` as kubectl reads it: ``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``,
    ``k in (a,b)``, ``k notin (a,b)``, comma-separated (all must hold)."""
    parts = [p.strip() for p in re.split(r",(?![^()]*\))", text) if p.strip()]
    reqs = []
    for part in parts:
        sets = re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)", part)
        if sets:
            values = tuple(v.strip() for v in sets.group(3).split(",") if v.strip())
            reqs.append(Requirement(sets.group(1), "In" if sets.group(2) == "in" else "NotIn",
                                    values))
            continue
        pair = re.fullmatch(r"([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)", part)
        if pair:
            op = "NotIn" if pair.group(2) == "!=" else "In"
            reqs.append(Requirement(pair.group(1), op, (pair.group(3),)))
        elif re.fullmatch(r"!?[\w./-]+", part):
            reqs.append(Requirement(part.lstrip("!"),
                                    "DoesNotExist" if part.startswith("!") else "Exists"))
        else:
            raise LabkitError(f"unable to parse requirement: {part!r}",
                              hint="e.g. -l app=api, -l 'tier in (api,data)'")
    return LabelSelector(expressions=tuple(reqs))
