"""A small adapter over the official ``kubernetes`` client, speaking plain dicts.

Everything that talks to an API server goes through :class:`KubeClient`, and
every client exception is translated into a :class:`~labkit.errors.LabkitError`
in one place (:func:`translate`), ``raise ... from exc``. Objects go in and
come out as the JSON dicts ``kubectl get -o json`` shows, which keeps callers
(and their fakes in tests) free of the client's generated model classes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from labkit.errors import ClusterError, LabkitError, ManifestError, UnknownKindError
from labkit.tools.process import Result

FIELD_MANAGER = "labkit"
#: The exec stream's channel that carries the final metav1.Status (v4 and v5 protocols).
ERROR_CHANNEL = 3


class KubeApi(Protocol):
    """What the kind backend needs from an API server (a fake implements it in tests)."""

    def list(self, api_version: str, kind: str, namespace: str | None = None
             ) -> list[dict[str, Any]]: ...

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None
            ) -> dict[str, Any] | None: ...

    def apply(self, doc: dict[str, Any]) -> dict[str, Any]: ...

    def delete(self, doc: dict[str, Any]) -> bool: ...

    def exec(self, namespace: str, pod: str, argv: Sequence[str], *, container: str = "",
             timeout: float = 60) -> Result: ...


def describe(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{doc.get('kind')} {ns + '/' if ns else ''}{meta.get('name')}"


def _status_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    if isinstance(body, str) and body:
        try:
            data = json.loads(body)
        except ValueError:
            return body.strip()[:500]
        if isinstance(data, dict) and data.get("message"):
            return str(data["message"])
    return str(getattr(exc, "reason", "") or exc).strip()


def translate(exc: BaseException, what: str) -> LabkitError:
    """The LabkitError for a client exception raised while doing ``what``."""
    from kubernetes.client.exceptions import ApiException  # lazy: heavy (kind path)
    from kubernetes.dynamic.exceptions import ResourceNotFoundError  # lazy: heavy (kind path)

    if isinstance(exc, LabkitError):
        return exc
    if isinstance(exc, ResourceNotFoundError):
        # The dynamic client's discovery found no such kind: the API server's "no matches".
        text = str(exc)
        return UnknownKindError(f"{what}: no matches for kind ({text})",
                                hint="the kind's CRD is not installed in this cluster")
    if isinstance(exc, ApiException):
        status = getattr(exc, "status", None)
        message = _status_message(exc)
        if status in (400, 422):
            return ManifestError(f"{what}: the API server refused it: {message}",
                                 hint="fix the field the message names and apply again")
        if status == 403 and "being terminated" in message:
            # NamespaceLifecycle admission answers 403 while a deleted namespace drains.
            return ClusterError(f"{what}: its namespace is still being deleted: {message}",
                                hint="wait until `kubectl get ns` no longer lists it, then "
                                "apply again")
        if status in (401, 403):
            return ClusterError(f"{what}: not allowed ({status}): {message}",
                                hint="the lab's kubeconfig lost its credentials; "
                                "`kind export kubeconfig --name CLUSTER` restores them")
        if status == 404:
            return ClusterError(f"{what}: not found: {message}",
                                hint="it may have been deleted; `labkit status` shows the cluster")
        return ClusterError(f"{what}: the API server answered {status}: {message}",
                            hint="the cluster may still be starting; retry in a minute")
    if isinstance(exc, (OSError, TimeoutError)) or type(exc).__module__.startswith("urllib3"):
        return ClusterError(f"{what}: cannot reach the API server ({exc})",
                            hint="is the kind cluster running? `docker ps` should list its "
                            "nodes; `labkit up STAGE` starts it")
    return ClusterError(f"{what}: {type(exc).__name__}: {exc}")


@contextmanager
def api_call(what: str) -> Iterator[None]:
    """Translate any client failure inside the block (the one place that does it)."""
    try:
        yield
    except LabkitError:
        raise
    except Exception as exc:  # noqa: BLE001 - translated and re-raised
        raise translate(exc, what) from exc


class KubeClient:
    """The real thing: a kubernetes ApiClient for one explicit context.

    Built from ``kubeconfig``, a kubeconfig *dict* (the entries the guard approved,
    :attr:`labkit.backends.kind.guard.LabContext.client_config`), never from the
    ``KUBECONFIG`` the client library read at import.
    """

    def __init__(self, context: str, kubeconfig: dict[str, Any]) -> None:
        from kubernetes import config  # lazy: heavy (kind path)

        self.context = context
        with api_call(f"loading kube context {context}"):
            self.api_client = config.new_client_from_config_dict(kubeconfig, context=context)
        self._dynamic: Any = None

    @property
    def dynamic(self) -> Any:
        if self._dynamic is None:
            from kubernetes.dynamic import DynamicClient  # lazy: heavy (kind path)

            with api_call("discovering the API server's resources"):
                self._dynamic = DynamicClient(self.api_client)
        return self._dynamic

    def _resource(self, api_version: str, kind: str) -> Any:
        from kubernetes.dynamic.exceptions import ResourceNotFoundError  # lazy: heavy (kind path)

        try:
            return self.dynamic.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError as exc:
            raise UnknownKindError(f'no matches for kind "{kind}" in version "{api_version}"',
                                   field="kind",
                                   hint="the kind's CRD is not installed in this cluster"
                                   ) from exc

    def list(self, api_version: str, kind: str, namespace: str | None = None
             ) -> list[dict[str, Any]]:
        from kubernetes.client.exceptions import ApiException  # lazy: heavy (kind path)

        with api_call(f"listing {kind}"):
            res = self._resource(api_version, kind)
            try:
                found = res.get(namespace=namespace) if res.namespaced else res.get()
            except ApiException as exc:
                if exc.status != 404:
                    raise
                # A 404 on a list means discovery named a kind the server no longer serves:
                # the client caches discovery on disk by host:port, and a recreated kind
                # cluster may get the old port back. Discover again; UnknownKindError if gone.
                self.dynamic.resources.invalidate_cache()
                res = self._resource(api_version, kind)
                found = res.get(namespace=namespace) if res.namespaced else res.get()
            return [dict(item) for item in found.to_dict().get("items", [])]

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None
            ) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException  # lazy: heavy (kind path)

        with api_call(f"reading {kind} {name}"):
            res = self._resource(api_version, kind)
            try:
                found = res.get(name=name, namespace=namespace if res.namespaced else None)
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise
            return dict(found.to_dict())

    def apply(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply (idempotent, like ``kubectl apply --server-side``)."""
        from kubernetes.client.exceptions import ApiException  # lazy: heavy (kind path)

        meta = doc.get("metadata") or {}
        with api_call(f"applying {describe(doc)}"):
            res = self._resource(str(doc["apiVersion"]), str(doc["kind"]))
            namespace = (meta.get("namespace") or "default") if res.namespaced else None
            try:
                out = res.server_side_apply(body=doc, name=meta.get("name"),
                                            namespace=namespace, field_manager=FIELD_MANAGER,
                                            force_conflicts=True)
            except ApiException as exc:
                # An apply creates what is missing; an aggregated API server that cannot
                # (Calico 3.32.0's for tiered policies: NotFound, projectcalico/calico#12841)
                # gets a plain create instead. A missing namespace fails the create too.
                if exc.status != 404:
                    raise
                out = res.create(body=doc, namespace=namespace, field_manager=FIELD_MANAGER)
            return dict(out.to_dict())

    def delete(self, doc: dict[str, Any]) -> bool:
        from kubernetes.client.exceptions import ApiException  # lazy: heavy (kind path)

        meta = doc.get("metadata") or {}
        with api_call(f"deleting {describe(doc)}"):
            res = self._resource(str(doc["apiVersion"]), str(doc["kind"]))
            namespace = (meta.get("namespace") or "default") if res.namespaced else None
            try:
                res.delete(name=meta.get("name"), namespace=namespace)
            except ApiException as exc:
                if exc.status == 404:
                    return False
                raise
            return True

    def exec(self, namespace: str, pod: str, argv: Sequence[str], *, container: str = "",
             timeout: float = 60) -> Result:
        """Run ``argv`` in a pod's container; the exit code comes from the error channel.

        The client's own ``WSClient.returncode`` is not used: it fails with a TypeError
        when the stream ends without a status, and with a ValueError on a failure that
        is not an exit code (an InternalError such as "executable file not found").
        Channels are read with ``timeout=0``: after a timed-out run a blocking read
        would wait for the next frame, possibly for ever.

        Each exec gets its own ``ApiClient`` (sharing the configuration, so the same
        context and credentials): ``kubernetes.stream.stream`` swaps the client's
        ``call_api`` for a websocket version while it connects, so overlapping execs on
        one shared client (labkit probes from several pods at once) can leave the swap in
        place, and every later REST call then fails with "Handshake status 200 OK"
        (kubernetes-client/python#928, and the thread-safety warning in its README).
        """
        from kubernetes import client, stream  # lazy: heavy (kind path)

        kwargs: dict[str, Any] = {"command": list(argv), "stderr": True, "stdin": False,
                                  "stdout": True, "tty": False, "_preload_content": False}
        if container:
            kwargs["container"] = container
        own = client.ApiClient(configuration=self.api_client.configuration)
        core = client.CoreV1Api(own)
        with api_call(f"exec in pod {namespace}/{pod}"):
            try:
                ws = stream.stream(core.connect_get_namespaced_pod_exec, pod, namespace,
                                   **kwargs)
                try:
                    ws.run_forever(timeout=timeout)
                    finished = not ws.is_open()
                    stdout = ws.read_stdout(timeout=0) or ""
                    stderr = ws.read_stderr(timeout=0) or ""
                    status = ws.read_channel(ERROR_CHANNEL, timeout=0) or ""
                finally:
                    ws.close()
            finally:
                own.close()
        if not finished:
            code, note = -1, f"timed out after {timeout:g}s (labkit stopped waiting)"
        else:
            code, note = exit_status(status)
        if note:
            stderr = f"{stderr.rstrip()}\n{note}".lstrip("\n")
        return Result(("kubectl-exec", f"{namespace}/{pod}", *argv), code, stdout, stderr)


def exit_status(text: str) -> tuple[int, str]:
    """(exit code, note) from the metav1.Status an exec stream ends with.

    The kubelet sends ``{"status": "Success"}``, or for a non-zero exit
    ``reason: NonZeroExitCode`` with a cause of type ``ExitCode`` whose message is the
    code; any other failure (the program does not exist, the container is gone) is an
    InternalError whose message says why: code -1 and that message as the note.
    """
    if not text.strip():
        return -1, "the exec stream ended without an exit status"
    try:
        status = json.loads(text)
    except ValueError:
        return -1, f"unreadable exec status: {text.strip()[:200]}"
    if not isinstance(status, dict):
        return -1, f"unreadable exec status: {text.strip()[:200]}"
    if status.get("status") == "Success":
        return 0, ""
    causes = (status.get("details") or {}).get("causes") or []
    for cause in causes:
        if cause.get("reason", cause.get("type")) == "ExitCode":
            try:
                return int(cause.get("message", "")), ""
            except ValueError:
                break
    return -1, str(status.get("message") or text.strip()[:200])
