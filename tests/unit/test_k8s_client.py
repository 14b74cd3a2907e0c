"""labkit.tools.k8s.KubeClient over fakes of the kubernetes client's dynamic resources and exec
stream.

What is pinned: the server-side apply call (field manager, force, namespace defaulting),
the exit code read from the exec stream's status channel in every form the kubelet
sends, non-blocking reads after a timeout, and re-discovery when a cached kind is gone.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from labkit.errors import ClusterError, UnknownKindError
from labkit.tools.k8s import ERROR_CHANNEL, FIELD_MANAGER, KubeClient, exit_status, translate

# The metav1.Status forms the kubelet writes on the exec error channel
# (kubelet's remotecommand server: Success; NonZeroExitCode with an ExitCode cause, whose
# JSON key is "reason"; anything else an InternalError whose cause has only a message).
SUCCESS = json.dumps({"metadata": {}, "status": "Success"})
EXIT_7 = json.dumps({
    "metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
    "message": "command terminated with non-zero exit code: error executing command "
    "[sh -c exit 7], exit code 7",
    "details": {"causes": [{"reason": "ExitCode", "message": "7"}]}})
NOT_FOUND = json.dumps({
    "metadata": {}, "status": "Failure", "reason": "InternalError", "code": 500,
    "message": "Internal error occurred: error executing command in container: failed to "
    'exec in container: exec: "sh": executable file not found in $PATH',
    "details": {"causes": [{"message": 'exec: "sh": executable file not found in $PATH'}]}})


def bare_client(dynamic: Any = None) -> KubeClient:
    client = KubeClient.__new__(KubeClient)
    client.context = "kind-cni-lab"
    client.api_client = ApiClient()
    client._dynamic = dynamic
    return client


class FakeWs:
    def __init__(self, stdout: str = "", stderr: str = "", status: str = "",
                 still_open: bool = False) -> None:
        self.channels = {1: stdout, 2: stderr, ERROR_CHANNEL: status}
        self.still_open = still_open
        self.read_timeouts: list[Any] = []
        self.closed = False
        self.ran: float | None = None

    def run_forever(self, timeout: float | None = None) -> None:
        self.ran = timeout

    def is_open(self) -> bool:
        return self.still_open and not self.closed

    def read_channel(self, channel: int, timeout: Any = None) -> str:
        self.read_timeouts.append(timeout)
        return self.channels.pop(channel, "")

    def read_stdout(self, timeout: Any = None) -> str:
        return self.read_channel(1, timeout)

    def read_stderr(self, timeout: Any = None) -> str:
        return self.read_channel(2, timeout)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def exec_with(monkeypatch: pytest.MonkeyPatch) -> Any:
    calls: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = []

    def make(ws: FakeWs) -> list[tuple[Any, tuple[Any, ...], dict[str, Any]]]:
        def fake_stream(fn: Any, *args: Any, **kwargs: Any) -> FakeWs:
            calls.append((fn, args, kwargs))
            return ws
        monkeypatch.setattr("kubernetes.stream.stream", fake_stream)
        return calls
    return make


def test_exit_status_reads_every_form_the_kubelet_sends() -> None:
    assert exit_status(SUCCESS) == (0, "")
    assert exit_status(EXIT_7) == (7, "")
    code, note = exit_status(NOT_FOUND)
    assert code == -1 and "executable file not found" in note
    assert exit_status("")[0] == -1 and "without an exit status" in exit_status("")[1]
    assert exit_status("not json")[0] == -1


def test_exec_returns_the_exit_code_and_both_streams(exec_with: Any) -> None:
    ws = FakeWs("LABKIT\t0\t28\t000\t\t\n", "curl: (28) timed out\n", EXIT_7)
    calls = exec_with(ws)
    result = bare_client().exec("shop-web", "frontend-1", ["sh", "-c", "x"], container="probe",
                                timeout=30)
    assert result.returncode == 7 and result.stdout.startswith("LABKIT")
    assert "curl: (28)" in result.stderr
    fn, args, kwargs = calls[0]
    assert fn.__name__ == "connect_get_namespaced_pod_exec"
    assert args == ("frontend-1", "shop-web")
    assert kwargs == {"command": ["sh", "-c", "x"], "stderr": True, "stdin": False,
                      "stdout": True, "tty": False, "_preload_content": False,
                      "container": "probe"}
    assert ws.ran == 30 and ws.closed and set(ws.read_timeouts) == {0}


def test_exec_failure_that_is_not_an_exit_code_keeps_its_message(exec_with: Any) -> None:
    exec_with(FakeWs(status=NOT_FOUND))
    result = bare_client().exec("ns", "p", ["sh", "-c", "true"])
    assert result.returncode == -1 and "executable file not found" in result.stderr


def test_exec_timeout_never_blocks_on_reads_and_says_so(exec_with: Any) -> None:
    ws = FakeWs(stdout="partial", still_open=True)
    exec_with(ws)
    result = bare_client().exec("ns", "p", ["sleep", "99"], timeout=5)
    assert result.returncode == -1 and "timed out after 5s" in result.stderr
    assert result.stdout == "partial" and set(ws.read_timeouts) == {0} and ws.closed


class FakeResource:
    def __init__(self, namespaced: bool, fail_list: int = 0) -> None:
        self.namespaced = namespaced
        self.applied: list[dict[str, Any]] = []
        self.created: list[dict[str, Any]] = []
        self.fail_list = fail_list
        self.apply_not_found = False

    def server_side_apply(self, **kwargs: Any) -> Any:
        self.applied.append(kwargs)
        if self.apply_not_found:
            raise ApiException(status=404, reason="Not Found")
        return _Obj(kwargs["body"])

    def create(self, **kwargs: Any) -> Any:
        self.created.append(kwargs)
        return _Obj(kwargs["body"])

    def get(self, **kwargs: Any) -> Any:
        if self.fail_list:
            self.fail_list -= 1
            raise ApiException(status=404, reason="Not Found")
        return _Obj({"items": [{"metadata": {"name": "a"}}]})


class _Obj:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def to_dict(self) -> dict[str, Any]:
        return self.data


class FakeDiscovery:
    def __init__(self, table: dict[tuple[str, str], Any]) -> None:
        self.table = table
        self.invalidated = 0

    def get(self, api_version: str, kind: str) -> Any:
        if (api_version, kind) not in self.table:
            raise ResourceNotFoundError(f"No matches found for {kind}")
        return self.table[(api_version, kind)]

    def invalidate_cache(self) -> None:
        self.invalidated += 1


class FakeDynamic:
    def __init__(self, table: dict[tuple[str, str], Any]) -> None:
        self.resources = FakeDiscovery(table)


def test_apply_is_a_forced_server_side_apply_by_labkit() -> None:
    deploy = FakeResource(namespaced=True)
    crd = FakeResource(namespaced=False)
    client = bare_client(FakeDynamic({("apps/v1", "Deployment"): deploy,
                                      ("apiextensions.k8s.io/v1", "CustomResourceDefinition"):
                                      crd}))
    client.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}})
    client.apply({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                  "metadata": {"name": "installations.operator.tigera.io"}})
    sent = deploy.applied[0]
    assert sent["field_manager"] == FIELD_MANAGER == "labkit"
    assert sent["force_conflicts"] is True and sent["namespace"] == "default"
    assert crd.applied[0]["namespace"] is None


def test_list_rediscovers_when_a_cached_kind_is_gone() -> None:
    stale = FakeResource(namespaced=False, fail_list=1)
    dynamic = FakeDynamic({("operator.tigera.io/v1", "Installation"): stale})
    client = bare_client(dynamic)
    assert client.list("operator.tigera.io/v1", "Installation") == [{"metadata": {"name": "a"}}]
    assert dynamic.resources.invalidated == 1
    # Gone after re-discovery: the kind is not served (what callers wait on), not "not found".
    stale.fail_list = 1

    def forget() -> None:
        dynamic.resources.table.clear()
    dynamic.resources.invalidate_cache = forget  # type: ignore[method-assign]
    with pytest.raises(UnknownKindError, match="Installation"):
        client.list("operator.tigera.io/v1", "Installation")


def test_a_terminating_namespace_is_not_blamed_on_credentials() -> None:
    exc = ApiException(status=403, reason="Forbidden")
    exc.body = json.dumps({"kind": "Status", "status": "Failure", "reason": "Forbidden",
                           "message": 'pods "x" is forbidden: unable to create new content in '
                           "namespace shop-web because it is being terminated", "code": 403})
    err = translate(exc, "applying Pod shop-web/x")
    assert isinstance(err, ClusterError) and "still being deleted" in err.message
    assert "credentials" not in err.hint
    plain = ApiException(status=403, reason="Forbidden")
    assert "credentials" in translate(plain, "listing Pod").hint


def test_apply_creates_when_the_server_cannot_create_on_apply() -> None:
    # Calico 3.32.0's API server answered NotFound to an apply that should create a tiered
    # policy (projectcalico/calico#12841): labkit then creates it.
    gnp = FakeResource(namespaced=False)
    gnp.apply_not_found = True
    client = bare_client(FakeDynamic({("projectcalico.org/v3", "GlobalNetworkPolicy"): gnp}))
    doc = {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy",
           "metadata": {"name": "default.deny-all"}, "spec": {"selector": "all()"}}
    assert client.apply(doc) == doc
    assert gnp.created == [{"body": doc, "namespace": None, "field_manager": "labkit"}]
