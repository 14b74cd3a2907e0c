"""The probe script and its parser, checked against real curl outputs (tests/fixtures/curl/)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from labkit.backends.kind.probe import (
    Target,
    build_script,
    classify,
    exit_code_from_text,
    parse_output,
    run_probes,
    status_from_text,
    url_for,
)
from labkit.model import Denial, HttpRequest, Traffic
from labkit.tools.process import Result

FIXTURES = Path(__file__).parents[1] / "fixtures" / "curl"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", [
    "kubectl_exec_curl_xwing_l3l4_dropped_exit28_cilium_hubble_cli_docs.txt",
    "curl_exit28_connect_timeout_ci_cilium_issue5384.txt",
    "curl_exit28_operation_timed_out_egress_policy_openshift_verification_tests_pr3364.txt",
])
def test_timeouts_are_drops(name: str) -> None:
    code = exit_code_from_text(fixture(name))
    assert code == 28
    outcome = classify(code, 0)
    assert not outcome.allowed and outcome.denial is Denial.DROP


def test_envoy_403_access_denied_is_an_l7_denial() -> None:
    status = status_from_text(fixture("curl_I_l7_denied_403_envoy_cilium_issue13280.txt"))
    body = fixture("curl_starwars_put_exhaust_port_l7_denied_cilium_docs.txt")
    assert status == 403
    outcome = classify(0, status, body)
    assert not outcome.allowed and outcome.denial is Denial.HTTP_403


def test_other_answers_are_allowed_and_refusals_are_not() -> None:
    body = fixture("curl_starwars_post_request_landing_allowed_cilium_docs.txt")
    assert classify(0, 200, body).allowed
    assert classify(0, 403, "forbidden by the app").allowed  # a 403 that is not Envoy's
    refused = classify(7, 0, "", "curl: (7) Failed to connect to 10.244.1.3 port 9: "
                       "Connection refused")
    assert not refused.allowed and refused.denial is None and "refused" in refused.detail


def test_script_covers_every_target_in_one_shell() -> None:
    script = build_script([Target(0, url_for("10.244.1.3", 8080, None)),
                           Target(1, url_for("fd00::5", 80, HttpRequest("POST", "/v1/x")),
                                  "POST")])
    assert "p 0 GET http://10.244.1.3:8080/ &" in script
    assert "p 1 POST 'http://[fd00::5]:80/v1/x' &" in script
    assert script.rstrip().endswith("wait")


def test_headers_are_sent_with_curl() -> None:
    script = build_script([Target(3, "http://10.244.1.3:8080/admin", "GET",
                                  (("X-Role", "admin"), ("Authorization", "Bearer a b")))])
    assert "p 3 GET http://10.244.1.3:8080/admin -H 'X-Role: admin' " \
        "-H 'Authorization: Bearer a b' &" in script
    assert "shift 3" in script and '"$@" "$u"' in script


def test_parse_output_ignores_noise() -> None:
    out = "some warning\nLABKIT\t0\t0\t200\tNOW: 2026\t\nLABKIT\t1\t28\t000\t\tcurl: (28) x\n"
    parsed = parse_output(out)
    assert parsed[0].allowed and parsed[0].http_code == 200
    assert parsed[1].denial is Denial.DROP


def test_exec_failure_marks_all_targets_of_that_source() -> None:
    t = Traffic("a/p", "b/q", 80)
    results = run_probes({"a/p": [(t, Target(0, "http://x/"))]}, {t: True},
                         lambda src, script: Result(("x",), 1, "",
                                                    'container "probe" not found'),
                         retries=0)
    assert not results[t].outcome.allowed and "probe could not run" in results[t].outcome.detail


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_paths_with_brackets_and_braces_reach_the_server(tmp_path: Path) -> None:
    """The script with real curl against a local HTTP server: without --globoff curl reads
    /a[1]/{x} as a URL glob and fails (exit 3) before sending anything."""
    import http.server
    import subprocess
    import threading

    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            seen.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = url_for("127.0.0.1", server.server_address[1], HttpRequest("GET", "/a[1]/{x}"))
        script = build_script([Target(0, url)]).replace("/tmp/", f"{tmp_path}/")
        out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    outcome = parse_output(out.stdout)[0]
    assert outcome.exit_code == 0 and outcome.http_code == 200, outcome.detail
    assert seen == ["/a[1]/{x}"]


# -- DNS probes (busybox nslookup in the probe container) -------------------------------------
NSLOOKUP = Path(__file__).parents[1] / "fixtures" / "nslookup"


def _run_dns_script(tmp_path: Path, nslookup_output: str, rc: int) -> str:
    """Run the real probe script under /bin/sh with a stand-in nslookup (and timeout) that
    prints a recorded busybox output; returns the script's stdout."""
    import os
    import stat
    import subprocess

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / "out.txt").write_text(nslookup_output)
    fake = bin_dir / "nslookup"
    fake.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/argv\ncat {tmp_path}/out.txt\n'
                    f"exit {rc}\n")
    timeout = bin_dir / "timeout"
    timeout.write_text('#!/bin/sh\nshift\nexec "$@"\n')
    for f in (fake, timeout):
        f.chmod(f.stat().st_mode | stat.S_IEXEC)
    script = build_script([Target(4, "10.244.0.3", dns=True)])
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=env,
                         timeout=30, check=True).stdout
    argv = (tmp_path / "argv").read_text().split()
    assert argv == ["-timeout=2", "-retry=1", "kubernetes.default.svc.cluster.local.",
                    "10.244.0.3"]
    return out


def test_dns_probe_answer_even_nxdomain_means_reached(tmp_path: Path) -> None:
    text = (NSLOOKUP / "busybox_nxdomain_answered_docker_library_busybox_issue75.txt").read_text()
    outcome = parse_output(_run_dns_script(tmp_path, text.split("\ncommand terminated")[0], 1))[4]
    assert outcome.allowed and "NXDOMAIN" in outcome.detail


def test_dns_probe_timeout_is_a_drop(tmp_path: Path) -> None:
    text = (NSLOOKUP / "busybox_timed_out_kubernetes_the_hard_way_issue383.txt").read_text()
    outcome = parse_output(_run_dns_script(tmp_path, text.split("\ncommand terminated")[0], 1))[4]
    assert not outcome.allowed and outcome.denial is Denial.DROP
    assert "no servers could be reached" in outcome.detail


def test_dns_probe_success_and_a_missing_program() -> None:
    ok = parse_output("LABKIT\t1\t0\tDNS\tServer: 10.96.0.10 Address: 10.96.0.10:53\t\n")[1]
    assert ok.allowed
    missing = parse_output("LABKIT\t2\t127\tDNS\tsh: nslookup: not found\t\n")[2]
    assert not missing.allowed and missing.denial is None and "not found" in missing.detail


def test_a_request_with_a_host_is_sent_by_name() -> None:
    assert url_for("198.51.100.10", 80, HttpRequest("GET", "/", host="catalog.shop.test")) == \
        "http://catalog.shop.test:80/"
    assert url_for("198.51.100.10", 80, HttpRequest("GET", "/x")) == "http://198.51.100.10:80/x"
