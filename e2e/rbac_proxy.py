"""An authorizing proxy in front of the local API server: one client's requests held to the RBAC
of one ServiceAccount, as kube-apiserver holds them.

The local server authorizes nothing (every client is an administrator), but it evaluates its
stored RBAC objects as kube's RBAC authorizer does when asked with a SubjectAccessReview. This
proxy asks it, for every request of the client it serves, before forwarding the request:

* the request's attributes as kube-apiserver's RequestInfo makes them: verb (get, list, watch,
  create, update, patch, delete, deletecollection), API group, resource and subresource,
  namespace, name — for a list or watch with ``fieldSelector=metadata.name=<n>`` the name is
  ``<n>``, so ``resourceNames`` rules apply (kube does the same);
* RBAC escalation prevention (``pkg/registry/rbac``): creating or changing a Role needs
  ``escalate`` on roles, or every permission it grants held in its namespace; creating or
  changing a RoleBinding needs ``bind`` on the role it references, checked in the binding's
  namespace (``BindingAuthorized``), or every permission of that role held there.

Denied requests get kube's 403 ``Forbidden`` Status and never reach the server. Non-resource
requests (discovery, ``/version``) are forwarded: every authenticated user may make them
(``system:discovery``). Every decision is recorded (:attr:`RBACProxy.decisions`), with the
binding and role that allowed it (the review's reason), so a test can tell which grant each
request used and whether any was used at all.
"""

from __future__ import annotations

import http.client
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

RBAC_GROUP = "rbac.authorization.k8s.io"
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding",
                         "te", "trailer", "upgrade", "host", "content-length"})
_ALLOWED_BY = re.compile(r'allowed by (ClusterRoleBinding|RoleBinding) "([^"]+)" of '
                         r'(ClusterRole|Role) "([^"]+)"')


@dataclass(frozen=True)
class Attributes:
    """What kube-apiserver's authorizer is asked about one request."""

    verb: str
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""
    resource_request: bool = True

    @property
    def grant(self) -> tuple[str, str, str]:
        """(group, resource[/subresource], verb): what an RBAC rule names."""
        combined = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        return self.group, combined, self.verb


@dataclass(frozen=True)
class Decision:
    """One authorization: the request (or escalation check) and the answer."""

    method: str
    path: str
    attributes: Attributes
    allowed: bool
    role: tuple[str, str] | None
    """(kind, name) of the role whose binding allowed it."""
    binding: tuple[str, str] | None
    """(kind, ``name`` or ``name/namespace``) of that binding."""
    escalation: bool = False
    """A check of escalation prevention (a permission held, or bind), not a request."""


def request_attributes(method: str, target: str) -> Attributes:
    """kube-apiserver's RequestInfo of ``method target`` (``target``: path and query)."""
    split = urlsplit(target)
    query = parse_qs(split.query)
    parts = [p for p in split.path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 3:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, rest = parts[1], parts[3:]
    else:
        return Attributes(verb=method.lower(), path=split.path, resource_request=False)
    watch = False
    if rest[:1] == ["watch"]:  # the deprecated /watch/ paths
        watch, rest = True, rest[1:]
    namespace = ""
    if rest[:1] == ["namespaces"] and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in ("status", "finalize"):
            rest = rest[2:]
    resource, name = rest[0], rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if query.get("watch", [""])[0] in ("1", "true"):
        watch = True
    verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, "")
    if method == "GET":
        verb = "watch" if watch else ("get" if name else "list")
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    if verb in ("list", "watch") and not name:
        for selector in query.get("fieldSelector", []):
            field, op, value = _one_requirement(selector)
            if field == "metadata.name" and op in ("=", "==") and value:
                name = value
    return Attributes(verb=verb, group=group, resource=resource, subresource=subresource,
                      namespace=namespace, name=name, path=split.path)


def _one_requirement(selector: str) -> tuple[str, str, str]:
    if "," in selector:
        return "", "", ""
    match = re.fullmatch(r"([^=!]+)(==|=|!=)(.*)", selector)
    return (match.group(1), match.group(2), match.group(3)) if match else ("", "", "")


def rule_atoms(rules: list[dict[str, Any]]) -> Iterator[Attributes]:
    """Each (group, resource, verb, name) a list of rules grants, as kube's escalation check
    breaks rules down (a rule without resourceNames: the empty name)."""
    for rule in rules:
        for group in rule.get("apiGroups") or ():
            for combined in rule.get("resources") or ():
                resource, _, subresource = combined.partition("/")
                for verb in rule.get("verbs") or ():
                    for name in rule.get("resourceNames") or ("",):
                        yield Attributes(verb=verb, group=group, resource=resource,
                                         subresource=subresource, name=name)


class RBACProxy:
    """Serves one client (the operator) on ``url``, as ServiceAccount ``namespace/name``."""

    def __init__(self, upstream: str, account: tuple[str, str]) -> None:
        parts = urlsplit(upstream)
        assert parts.scheme == "http", upstream
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self.user = f"system:serviceaccount:{account[0]}:{account[1]}"
        self.groups = ["system:serviceaccounts", f"system:serviceaccounts:{account[0]}",
                       "system:authenticated"]
        self.decisions: list[Decision] = []
        self.refused: list[tuple[str, str, str]] = []
        """(method, path, message) of every request answered 403."""
        self._lock = threading.Lock()
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="rbac-proxy",
                                        daemon=True)

    def __enter__(self) -> RBACProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    # the server's answers -----------------------------------------------------------------
    def upstream(self, method: str, target: str, body: bytes | None = None,
                 headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """A request of the proxy's own (as the administrator): (status, decoded JSON)."""
        connection = http.client.HTTPConnection(self._host, self._port, timeout=30)
        try:
            connection.request(method, target, body=body, headers={
                "Content-Type": "application/json", "User-Agent": "rbac-proxy/1",
                **(headers or {})})
            answer = connection.getresponse()
            data = answer.read()
            return answer.status, orjson.loads(data) if data else None
        finally:
            connection.close()

    def review(self, attributes: Attributes) -> tuple[bool, str]:
        """The server's SubjectAccessReview of this account for ``attributes``."""
        spec: dict[str, Any] = {"user": self.user, "groups": self.groups}
        if attributes.resource_request:
            spec["resourceAttributes"] = {
                "verb": attributes.verb, "group": attributes.group,
                "resource": attributes.resource, "subresource": attributes.subresource,
                "namespace": attributes.namespace, "name": attributes.name}
        else:
            spec["nonResourceAttributes"] = {"verb": attributes.verb, "path": attributes.path}
        status, review = self.upstream(
            "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", orjson.dumps(
                {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                 "spec": spec}))
        assert status == 201, (status, review)
        return bool(review["status"].get("allowed")), str(review["status"].get("reason", ""))

    def decide(self, method: str, path: str, attributes: Attributes, *,
               escalation: bool = False) -> Decision:
        allowed, reason = self.review(attributes)
        match = _ALLOWED_BY.search(reason) if allowed else None
        decision = Decision(method, path, attributes, allowed,
                            (match.group(3), match.group(4)) if match else None,
                            (match.group(1), match.group(2)) if match else None, escalation)
        with self._lock:
            self.decisions.append(decision)
        return decision

    # escalation prevention ------------------------------------------------------------------
    def escalation_refusal(self, method: str, path: str, attributes: Attributes,
                           body: bytes) -> str | None:
        """Why a write of a Role or RoleBinding would escalate (None: it would not)."""
        if attributes.group != RBAC_GROUP or attributes.subresource or \
                attributes.verb not in ("create", "update", "patch") or \
                attributes.resource not in ("roles", "rolebindings"):
            return None
        sent = orjson.loads(body) if body.strip() else {}
        current: dict[str, Any] = {}
        if attributes.verb == "patch":
            status, found = self.upstream("GET", path)
            current = found if status == 200 else {}
        namespace = attributes.namespace
        if attributes.resource == "roles":
            if self.decide(method, path, Attributes("escalate", RBAC_GROUP, "roles",
                                                    namespace=namespace,
                                                    name=attributes.name),
                           escalation=True).allowed:
                return None
            rules = sent.get("rules") if "rules" in sent else current.get("rules")
        else:
            ref = sent.get("roleRef") or current.get("roleRef") or {}
            kind, name = ref.get("kind"), str(ref.get("name", ""))
            plural = "clusterroles" if kind == "ClusterRole" else "roles"
            if self.decide(method, path, Attributes("bind", RBAC_GROUP, plural,
                                                    namespace=namespace, name=name),
                           escalation=True).allowed:
                return None
            where = (f"/apis/{RBAC_GROUP}/v1/clusterroles/{name}" if kind == "ClusterRole"
                     else f"/apis/{RBAC_GROUP}/v1/namespaces/{namespace}/roles/{name}")
            status, role = self.upstream("GET", where)
            if status != 200:
                return f'{plural}.{RBAC_GROUP} "{name}" not found'
            rules = role.get("rules")
        missing = [atom for atom in rule_atoms(list(rules or ()))
                   if not self.decide(method, path,
                                      Attributes(atom.verb, atom.group, atom.resource,
                                                 atom.subresource, namespace, atom.name),
                                      escalation=True).allowed]
        if not missing:
            return None
        return ("is attempting to grant RBAC permissions not currently held: "
                + "; ".join(f"{a.grant} {a.name}".strip() for a in missing))


class _Handler(BaseHTTPRequestHandler):
    owner: RBACProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        owner = self.owner
        attributes = request_attributes(self.command, self.path)
        if attributes.resource_request:
            decision = owner.decide(self.command, self.path, attributes)
            if not decision.allowed:
                self._forbidden(attributes, _denial(owner.user, attributes))
                return
            refusal = owner.escalation_refusal(self.command, self.path, attributes, body)
            if refusal is not None:
                self._forbidden(attributes, f'user "{owner.user}" {refusal}')
                return
        self._forward(body)

    def _forbidden(self, attributes: Attributes, message: str) -> None:
        plural = (f"{attributes.resource}.{attributes.group}" if attributes.group
                  else attributes.resource)
        status = orjson.dumps({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": f'{plural} "{attributes.name}" is forbidden: {message}'
            if attributes.name else f"{plural} is forbidden: {message}",
            "reason": "Forbidden", "code": 403,
            "details": {"name": attributes.name, "group": attributes.group,
                        "kind": attributes.resource}})
        with self.owner._lock:
            self.owner.refused.append((self.command, self.path, message))
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(status)))
        self.end_headers()
        self.wfile.write(status)

    def _forward(self, body: bytes) -> None:
        owner = self.owner
        upstream = http.client.HTTPConnection(owner._host, owner._port, timeout=None)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            answer = upstream.getresponse()
            streamed = answer.getheader("Content-Length") is None
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in _HOP_BY_HOP:
                    self.send_header(key, value)
            if not streamed:
                data = answer.read()
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while chunk := answer.read1(65536):  # a watch: pass each piece on at once
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (OSError, http.client.HTTPException):
            # The client went (a watch it stopped), or the server (it stops): so does this
            # connection.
            self.close_connection = True
        finally:
            upstream.close()


def _denial(user: str, attributes: Attributes) -> str:
    """kube's wording of an RBAC denial."""
    where = (f'in the namespace "{attributes.namespace}"' if attributes.namespace
             else "at the cluster scope")
    resource = (f"{attributes.resource}/{attributes.subresource}" if attributes.subresource
                else attributes.resource)
    return (f'User "{user}" cannot {attributes.verb} resource "{resource}" in API group '
            f'"{attributes.group}" {where}')
