"""Real probes: one exec per source pod, all its targets in one shell script.

The script runs curl once per target (in parallel, in the background) and prints
one tab-separated line per target: ``LABKIT <id> <curl exit> <http code> <body>
<stderr>``. :func:`classify` turns that into an observation:

- exit 0 and HTTP 403 with body ``Access denied``: an L7 denial by Cilium's
  Envoy (samples/curl/curl_starwars_put_exhaust_port_l7_denied_cilium_docs.txt,
  curl_I_l7_denied_403_envoy_cilium_issue13280.txt);
- exit 0 and any other status: the connection was allowed (the server answered);
- exit 28: timed out, the packets were dropped (samples/curl/
  curl_exit28_connect_timeout_ci_cilium_issue5384.txt,
  kubectl_exec_curl_xwing_l3l4_dropped_exit28_cilium_hubble_cli_docs.txt);
- exit 7: connection refused (reached the pod, nothing listens, or a REJECT rule);
- anything else: a failure with curl's own message.

DNS (UDP 53) is probed with busybox ``nslookup`` (in the curl image, Alpine's busybox)
against the DNS pod's address, bounded by ``timeout``: any answer, NXDOMAIN included,
means the server was reached (docker-library/busybox#75); ``;; connection timed out; no
servers could be reached`` means the queries were dropped
(kelseyhightower/kubernetes-the-hard-way#383). Such a line carries ``DNS`` in place of
the HTTP code.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from labkit.model import Denial, HttpRequest, Traffic
from labkit.tools.process import Result

MARK = "LABKIT"
CONNECT_TIMEOUT = 3
MAX_TIME = 6

_CURL_EXIT = {
    6: "could not resolve host", 7: "connection refused", 28: "timed out (dropped)",
    35: "TLS handshake failed", 52: "empty reply from server", 56: "connection reset",
}


#: The name a DNS probe looks up: fully qualified, so no search path is involved.
DNS_NAME = "kubernetes.default.svc.cluster.local."
DNS_TIMEOUT = 2


@dataclass(frozen=True)
class Target:
    id: int
    url: str  # for a DNS target: the DNS server's address
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()  # sent with curl -H 'Name: value'
    dns: bool = False


@dataclass(frozen=True)
class Outcome:
    """One probe's result: what the parser understood from curl."""

    allowed: bool
    denial: Denial | None
    detail: str
    exit_code: int
    http_code: int = 0


def url_for(ip: str, port: int, http: HttpRequest | None) -> str:
    """The URL curl asks for: by name when the request names a host (the pod then looks the
    name up, as DNS-aware policies need), else by address."""
    host = http.host if http is not None and http.host else f"[{ip}]" if ":" in ip else ip
    path = http.path if http is not None else "/"
    return f"http://{host}:{port}{path if path.startswith('/') else '/' + path}"


def build_script(targets: Sequence[Target], *, connect_timeout: int = CONNECT_TIMEOUT,
                 max_time: int = MAX_TIME) -> str:
    """The shell script for one source pod (busybox sh + curl, as in curlimages/curl)."""
    lines = [
        "p() {",
        '  id=$1; m=$2; u=$3; shift 3; b=/tmp/labkit-$id.body; e=/tmp/labkit-$id.err',
        # --globoff: a path with [ ] { } is a path, not one of curl's URL globs (curl(1)).
        f'  c=$(curl -sS --globoff -o "$b" -w "%{{http_code}}" -X "$m" '
        f'--connect-timeout {connect_timeout} --max-time {max_time} "$@" "$u" 2>"$e"); rc=$?',
        "  body=$(head -c 80 \"$b\" 2>/dev/null | tr '\\t\\n\\r' '   ')",
        "  err=$(head -c 200 \"$e\" 2>/dev/null | tr '\\t\\n\\r' '   ')",
        f"  printf '{MARK}\\t%s\\t%s\\t%s\\t%s\\t%s\\n' \"$id\" \"$rc\" \"${{c:-000}}\" "
        '"$body" "$err"',
        '  rm -f "$b" "$e"',
        "}",
        "d() {",
        '  id=$1; o=/tmp/labkit-$id.dns',
        f'  timeout {max_time} nslookup -timeout={DNS_TIMEOUT} -retry=1 {DNS_NAME} "$2" '
        '>"$o" 2>&1; rc=$?',
        "  out=$(head -c 200 \"$o\" 2>/dev/null | tr '\\t\\n\\r' '   ')",
        f"  printf '{MARK}\\t%s\\t%s\\tDNS\\t%s\\t\\n' \"$id\" \"$rc\" \"$out\"",
        '  rm -f "$o"',
        "}",
    ]
    lines += [f"d {t.id} {shlex.quote(t.url)} &" if t.dns else
              " ".join([f"p {t.id} {shlex.quote(t.method)} {shlex.quote(t.url)}",
                        *(f"-H {shlex.quote(f'{k}: {v}')}" for k, v in t.headers)]) + " &"
              for t in targets]
    lines.append("wait")
    return "\n".join(lines) + "\n"


_EXIT_TEXT = re.compile(r"(?:command terminated with exit code|Exit(?:code| Status):?)\s*(\d+)",
                        re.IGNORECASE)
_CURL_ERR = re.compile(r"curl: \((\d+)\)")
_STATUS_LINE = re.compile(r"^HTTP/[\d.]+ (\d{3})", re.MULTILINE)


def exit_code_from_text(text: str) -> int | None:
    """curl's exit code as kubectl exec or curl itself reports it in free text."""
    for pattern in (_CURL_ERR, _EXIT_TEXT):
        m = pattern.search(text)
        if m:
            return int(m.group(1))
    return None


def status_from_text(text: str) -> int | None:
    """The HTTP status of a header dump (``curl -I``) such as ``HTTP/1.1 403 Forbidden``."""
    m = _STATUS_LINE.search(text)
    return int(m.group(1)) if m else None


def classify(exit_code: int, http_code: int, body: str = "", stderr: str = "") -> Outcome:
    if exit_code == 0:
        if http_code == 403 and "access denied" in body.lower():
            return Outcome(False, Denial.HTTP_403, "HTTP 403 Access denied (L7 policy)",
                           exit_code, http_code)
        return Outcome(True, None, f"HTTP {http_code}", exit_code, http_code)
    if exit_code == 28:
        return Outcome(False, Denial.DROP, "timed out: packets dropped (curl exit 28)",
                       exit_code, http_code)
    reason = _CURL_EXIT.get(exit_code, "failed")
    detail = f"{reason} (curl exit {exit_code})" + (f": {stderr.strip()}" if stderr.strip()
                                                     else "")
    return Outcome(False, None, detail, exit_code, http_code)


def classify_dns(exit_code: int, output: str) -> Outcome:
    """A DNS probe: reached when the server answered (even NXDOMAIN), dropped on a timeout."""
    text = " ".join(output.split())
    answered = exit_code == 0 or any(s in text for s in ("can't find", "NXDOMAIN", "No answer"))
    if answered:
        return Outcome(True, None, f"DNS answered: {text[:120]}" if text else "DNS answered",
                       exit_code)
    if "timed out" in text or "no servers could be reached" in text or exit_code in (124, 143):
        return Outcome(False, Denial.DROP, "DNS timed out: queries dropped (nslookup: "
                       f"{text[:120] or 'no answer'})", exit_code)
    return Outcome(False, None, f"DNS probe failed (exit {exit_code}): {text[:160]}", exit_code)


def parse_output(stdout: str) -> dict[int, Outcome]:
    """Outcomes by target id from the script's output (other lines are ignored)."""
    out: dict[int, Outcome] = {}
    for line in stdout.splitlines():
        parts = line.split("\t")
        if len(parts) < 4 or parts[0] != MARK:
            continue
        body = parts[4] if len(parts) > 4 else ""
        err = parts[5] if len(parts) > 5 else ""
        try:
            ident, rc = int(parts[1]), int(parts[2])
            if parts[3] == "DNS":
                out[ident] = classify_dns(rc, body)
                continue
            code = int(parts[3] or 0)
        except ValueError:
            continue
        out[ident] = classify(rc, code, body, err)
    return out


# -- the driver --------------------------------------------------------------------------
ExecFn = Callable[[str, str], Result]  # (source pod key, script) -> Result


@dataclass(frozen=True)
class ProbeResult:
    outcome: Outcome
    attempts: int


def run_probes(jobs: dict[str, list[tuple[Traffic, Target]]], expected: dict[Traffic, bool],
               exec_script: ExecFn, *, retries: int = 2, parallel: int = 8,
               pause: Callable[[], None] = lambda: None) -> dict[Traffic, ProbeResult]:
    """Probe every job; re-probe only cells whose observation differs from the expectation.

    ``jobs`` maps a source pod to its (traffic, target) pairs: one exec per source
    per round, sources in parallel. At most ``1 + retries`` rounds; attempts are kept.
    """
    results: dict[Traffic, ProbeResult] = {}
    pending = {src: list(pairs) for src, pairs in jobs.items() if pairs}
    for round_no in range(1 + retries):
        if not pending:
            break
        if round_no:
            pause()
        with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(pending)))) as pool:
            outputs = dict(zip(pending, pool.map(
                lambda item: _one_source(exec_script, item[0], item[1]), pending.items()),
                strict=True))
        again: dict[str, list[tuple[Traffic, Target]]] = {}
        for src, pairs in pending.items():
            parsed = outputs[src]
            for traffic, target in pairs:
                outcome = parsed.get(target.id) or Outcome(
                    False, None, "no result line from the probe script", -1)
                results[traffic] = ProbeResult(outcome, round_no + 1)
                if outcome.allowed != expected.get(traffic, outcome.allowed):
                    again.setdefault(src, []).append((traffic, target))
        pending = again
    return results


def _one_source(exec_script: ExecFn, source: str, pairs: list[tuple[Traffic, Target]]
                ) -> dict[int, Outcome]:
    script = build_script([t for _, t in pairs])
    result = exec_script(source, script)
    parsed = parse_output(result.stdout)
    if not parsed and result.returncode != 0:
        code = exit_code_from_text(result.stderr) or result.returncode
        failure = Outcome(False, None, f"probe could not run in {source}: "
                          f"{result.stderr.strip()[:200] or f'exit {code}'}", code)
        return {t.id: failure for _, t in pairs}
    return parsed
