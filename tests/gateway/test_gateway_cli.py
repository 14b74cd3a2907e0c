"""``labkit mesh route``: the contract of issue 11, on the shipped example and on bad input.

    labkit mesh route MANIFEST [MANIFEST ...] --requests FILE [--output json|text]
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from labkit.cli import main

ROOT = Path(__file__).resolve().parents[2]
SHOP = ROOT / "environments" / "workloads" / "shop"
EXAMPLE = ROOT / "environments" / "examples" / "gateway-split"
REQUEST_FIELDS = {"host", "path", "method", "headers", "port"}
RESULT_FIELDS = {"status", "backends", "redirect", "request", "reasons"}


def run_json(capsys: pytest.CaptureFixture[str], *manifests: Path | str, requests: Path
             ) -> list[dict]:
    assert main(["mesh", "route", *map(str, manifests), "--requests", str(requests),
                 "--output", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"results"}
    return out["results"]


def test_the_shop_example_splits_checkout_80_20(capsys: pytest.CaptureFixture[str]) -> None:
    results = run_json(capsys, SHOP, EXAMPLE / "manifests",
                       requests=EXAMPLE / "requests.yaml")
    assert len(results) == 5
    for r in results:
        assert set(r) == REQUEST_FIELDS | RESULT_FIELDS | ({"gateway"} if "gateway" in r
                                                          else {"service"})
        assert r["backends"] == {} or sum(r["backends"].values()) == pytest.approx(1)
        assert all(isinstance(line, str) for line in r["reasons"]) and r["reasons"]
    split, canary, other_path, other_host, east_west = results
    assert split["gateway"] == "shop-web/shop" and split["method"] == "GET"
    assert (split["status"], split["backends"]) == (200, {"shop-api/checkout-v1": 0.8,
                                                         "shop-api/checkout-v2": 0.2})
    assert split["request"] == {"path": "/checkout", "host": "shop.example.com", "headers": {}}
    assert (canary["status"], canary["backends"]) == (200, {"shop-api/checkout-v2": 1.0})
    assert canary["request"]["headers"] == {"X-Canary": "true"}
    assert canary["request"]["path"] == "/checkout/cart?id=42"
    assert other_path["backends"] == {"shop-web/frontend": 1.0}
    assert (other_host["status"], other_host["backends"], other_host["request"]) == (404, {},
                                                                                     None)
    assert east_west["service"] == "shop-api/checkout" and east_west["port"] == 8080
    assert east_west["backends"] == {"shop-api/checkout-v1": 0.8, "shop-api/checkout-v2": 0.2}


def test_redirect_result_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "m.yaml").write_text("""
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: cilium
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: to-https}
spec:
  parentRefs: [{name: gw}]
  rules:
  - filters: [{type: RequestRedirect, requestRedirect: {scheme: https, statusCode: 301}}]
""")
    (tmp_path / "r.yaml").write_text("- {gateway: default/gw, host: shop.example.com, "
                                     "path: '/a?b=c'}\n")
    [r] = run_json(capsys, tmp_path / "m.yaml", requests=tmp_path / "r.yaml")
    assert (r["status"], r["backends"], r["request"]) == (301, {}, None)
    assert r["redirect"] == {"scheme": "https", "host": "shop.example.com", "port": 443,
                             "path": "/a"}
    assert r["host"] == "shop.example.com" and r["headers"] == {} and r["port"] == 80
    assert main(["mesh", "route", str(tmp_path / "m.yaml"), "--requests",
                 str(tmp_path / "r.yaml")]) == 0
    assert capsys.readouterr().out.startswith("301 redirect to https://shop.example.com/a ")


def test_text_output_names_status_backends_and_reasons(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    assert main(["mesh", "route", str(SHOP), str(EXAMPLE / "manifests"), "--requests",
                 str(EXAMPLE / "requests.yaml")]) == 0
    text = capsys.readouterr().out
    assert "200 -> shop-api/checkout-v1 80%, shop-api/checkout-v2 20%" in text
    assert "matched HTTPRoute shop-api/checkout-split rules[0]" in text
    assert "404" in text and "accepts host other.example.com" in text


@pytest.mark.parametrize(("requests", "expected"), [
    ("- {gateway: shop-web/nope}\n", "request [0]: gateway: no Gateway shop-web/nope"),
    ("- {gateway: shop-web/shop, service: shop-api/checkout}\n",
     "give exactly one of gateway and service"),
    ("- {service: shop-api/checkout, port: 80}\n", "Service shop-api/checkout has no port 80"),
    ("- {gateway: shop-web/shop, path: checkout}\n", "request [0]: path:"),
    ("- {gateway: shop-web/shop, verb: GET}\n", "unknown field 'verb'"),
    ("- {gateway: shop-web/shop, port: 70000}\n", "out of range"),
    ("- {gateway: shop-web/shop, headers: {X-A: [1]}}\n", "a header value must be a string"),
    ("{gateway: shop-web/shop}\n", "expected a list"),
    ("[]\n", "holds no requests"),
    ("- [unclosed\n", "invalid YAML"),
])
def test_bad_requests_give_one_line_naming_the_file_and_item(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], requests: str, expected: str) -> None:
    path = tmp_path / "requests.yaml"
    path.write_text(requests)
    assert main(["mesh", "route", str(SHOP), str(EXAMPLE / "manifests"), "--requests",
                 str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    err = captured.err.strip()
    assert "\n" not in err and err.startswith("labkit mesh: error: ")
    assert str(path) in err and expected in err


def test_a_bad_manifest_names_file_object_and_field(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "route.yaml"
    bad.write_text("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
                   "metadata: {name: r, namespace: shop-api}\n"
                   "spec: {rules: [{backendRefs: [{name: checkout-v1, weight: 80}]}]}\n")
    assert main(["mesh", "route", str(bad), "--requests", str(EXAMPLE / "requests.yaml")]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: HTTPRoute shop-api/r: spec.rules[0].backendRefs[0].port: Must have port" \
        in err


def test_the_installed_command_runs_as_a_program(tmp_path: Path) -> None:
    """Exit 0 with JSON on stdout; exit non-zero with one line on stderr, no traceback."""
    labkit = [sys.executable, "-m", "labkit.cli", "mesh", "route", str(SHOP),
              str(EXAMPLE / "manifests")]
    ok = subprocess.run([*labkit, "--requests", str(EXAMPLE / "requests.yaml"), "--output",
                         "json"], capture_output=True, text=True, timeout=60, check=False)
    assert ok.returncode == 0, ok.stderr
    assert len(json.loads(ok.stdout)["results"]) == 5
    missing = subprocess.run([*labkit, "--requests", str(tmp_path / "none.yaml")],
                             capture_output=True, text=True, timeout=60, check=False)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert missing.stderr.count("\n") == 1 and "none.yaml" in missing.stderr
