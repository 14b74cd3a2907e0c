"""The course plan: which notebooks exist, in what order, and what each teaches."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from labkit.display import Table
from labkit.environments import environments_dir
from labkit.errors import ManifestError

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"

#: (notebook stem, what the learner does and sees), from the course design.
PLAN: tuple[tuple[str, str], ...] = (
    ("00-preflight", "doctor checks, backend choice, pinned versions, this plan"),
    ("01-flannel", "a cluster without CNI, Flannel, pod addresses per node, a policy Flannel "
     "ignores"),
    ("02-calico", "migrate to Calico: the same policy enforced; Calico policy order"),
    ("03-metallb", "MetalLB L2: a LoadBalancer service reached from outside the cluster"),
    ("04-cilium", "Cilium with kube-proxy replacement; identities; policies enforced again"),
    ("05-l7-policies", "HTTP rules: 403 versus timeout"),
    ("06-encryption", "WireGuard: captures before and after"),
    ("07-hubble", "flows as data, drops and their reasons"),
    ("08-service-mesh", "Gateway API traffic split, mTLS and its limits"),
    ("09-clustermesh", "two clusters, a global service, a cross-cluster policy"),
    ("10-choosing-a-cni", "a capability table built from what this run observed"),
)


def plan_table(folder: Path = NOTEBOOKS_DIR) -> Table:
    present = {p.stem for p in folder.glob("[0-9][0-9]-*.ipynb")}
    table = Table(("notebook", "status", "what you do and see"), title="The course")
    for stem, topic in PLAN:
        table.add(stem, "available" if stem in present else "planned", topic)
    return table


# -- the article ------------------------------------------------------------------------------
CLAIMS_FILE = environments_dir() / "article" / "claims.yaml"
VERDICTS = ("true", "outdated", "wrong")


@dataclass(frozen=True)
class Article:
    title: str
    author: str
    publication: str
    year: int
    url: str

    def citation(self) -> str:
        """Title, author (when known), publication, year and link, in one line."""
        by = f", by {self.author}" if self.author else ""
        return f"“{self.title}”{by}, {self.publication}, {self.year}: {self.url}"


@dataclass(frozen=True)
class Claim:
    claim: str
    verdict: str
    today: str
    lab: str


def load_claims(path: Path = CLAIMS_FILE) -> tuple[Article, list[Claim]]:
    """The article and its claims (environments/article/claims.yaml), checked as they load."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    meta = data.get("article") or {}
    try:
        article = Article(str(meta["title"]), str(meta.get("author") or ""),
                          str(meta["publication"]), int(meta["year"]), str(meta["url"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ManifestError(f"the article needs title, publication, year and url ({exc})",
                            source=str(path), field="article",
                            hint="fill in the article: block") from exc
    known = {stem for stem, _ in PLAN}
    claims = []
    for i, raw in enumerate(data.get("claims") or []):
        claim = Claim(str(raw.get("claim", "")), str(raw.get("verdict", "")),
                      " ".join(str(raw.get("today", "")).split()), str(raw.get("lab", "")))
        if claim.verdict not in VERDICTS or claim.lab not in known or not claim.claim:
            raise ManifestError(f"verdict must be one of {', '.join(VERDICTS)} and lab a course "
                                f"notebook (got {claim.verdict!r}, {claim.lab!r})",
                                source=str(path), field=f"claims[{i}]",
                                hint="see labkit.course.PLAN for the notebooks")
        claims.append(claim)
    return article, claims


def claims_table(path: Path = CLAIMS_FILE, folder: Path = NOTEBOOKS_DIR) -> Table:
    """The article's claims: verdict, what is true today, and the lab that shows it
    (``planned`` for a lab that does not exist yet)."""
    article, claims = load_claims(path)
    present = {p.stem for p in folder.glob("[0-9][0-9]-*.ipynb")}
    table = Table(("claim", "verdict", "what is true today", "shown in"),
                  title="The article's claims, checked")
    for c in claims:
        table.add(c.claim, c.verdict, c.today,
                  c.lab if c.lab in present else f"{c.lab} (planned)")
    table.notes.append(f"The article: {article.citation()}")
    return table
