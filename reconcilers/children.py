"""What every session has whatever runs it, rendered as upstream's operator creates it.

Pure functions of the session (and what they need of the cluster): the runner token Secret
``ambient-runner-token-<n>`` with ``k8s-token`` and ``agui-token``, the runner's
ServiceAccount ``ambient-session-<n>`` with its Role and RoleBinding, the Service
``session-<n>`` (owned by the workload, as upstream's is owned by the Pod), the namespace's
NetworkPolicy ``runner-allow-backend-only`` and copies of platform Secrets
(``shared/UPSTREAM-CONTRACT.md`` §4).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson

from informers.resource import Resource

from .environment import Obj, RenderError
from .resources import (
    AGENTIC_SESSIONS,
    AGUI_PORT_NAME,
    AGUI_TOKEN_KEY,
    APP_LABEL,
    COPIED_FROM,
    CREATED_BY_USER_ID,
    DEFAULT_PORT,
    K8S_TOKEN_KEY,
    MANAGED_BY,
    NETWORK_POLICY_NAME,
    ROLE_BINDINGS,
    ROLES,
    RUNNER_APP,
    RUNNER_SA_APP,
    SERVICE_APP,
    SESSION_LABEL,
    TOKEN_REFRESHED_AT,
    TOKEN_SECRET_APP,
    role_binding_name,
    role_name,
    selector_labels,
    service_account_name,
    service_name,
    token_secret_name,
)

_DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
RUNNER_RULES: tuple[dict[str, list[str]], ...] = (
    {"apiGroups": ["vteam.ambient-code"], "resources": ["agenticsessions"],
     "verbs": ["get", "list", "watch", "create", "update", "patch"]},
    {"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews"],
     "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
    {"apiGroups": ["mlflow.kubeflow.org"], "resources": ["experiments"],
     "verbs": ["get", "list", "update"]},
)
"""The runner's Role: what the backend checks its bot token for (contract §4.10)."""


def meta(session: Mapping[str, Any]) -> tuple[str, str]:
    m = session["metadata"]
    return str(m["namespace"]), str(m["name"])


def owner_reference(owner: Mapping[str, Any], resource: Resource, *,
                    controller: bool = True) -> dict[str, Any]:
    """A reference to ``owner`` of kind ``resource`` (objects from a list may lack their
    apiVersion and kind, so the kind is passed). No ``blockOwnerDeletion``: upstream leaves it
    out, and setting it needs update rights on the owner's finalizers."""
    m = owner["metadata"]
    ref: dict[str, Any] = {"apiVersion": resource.api_version, "kind": resource.kind,
                           "name": m["name"], "uid": m["uid"]}
    if controller:
        ref["controller"] = True
    return ref


def session_owner(session: Mapping[str, Any]) -> dict[str, Any]:
    return owner_reference(session, AGENTIC_SESSIONS)


def check_names(session: Mapping[str, Any]) -> None:
    """Refuse, before anything is created, a session whose children's names the API server
    would refuse: the Service ``session-<n>`` must be a DNS-1035 label of at most 63
    characters (upstream finds out after creating the Pod and leaves it without a Service)."""
    _, name = meta(session)
    service = service_name(name)
    if len(service) > 63:
        raise RenderError("InvalidServiceName",
                          f'service name "{service}" is {len(service)} characters long, over '
                          "the limit of 63; shorten the session name")
    if not _DNS1035.fullmatch(service):
        raise RenderError("InvalidServiceName",
                          f'service name "{service}" is not a DNS-1035 label (lower-case '
                          "letters, digits and '-'); rename the session without dots")


MAX_OBJECT_BYTES = 1_572_864
"""etcd's default request limit (1.5 MiB): a bigger object is refused by the API server with a
500 that no retry can cure, so it is refused here first, as bad input."""


def check_sizes(objects: Iterable[Mapping[str, Any]]) -> None:
    """Refuse a run whose rendered children (a VM's cloud-init Secret carries the whole
    runner environment, a Pod the prompt) would not fit in the API server's storage."""
    for obj in objects:
        size = len(orjson.dumps(obj))
        if size > MAX_OBJECT_BYTES:
            raise RenderError("ObjectTooLarge",
                              f"{obj.get('kind')} {(obj.get('metadata') or {}).get('name')} "
                              f"would be {size / 1048576:.1f} MiB, over the API server's "
                              f"object limit of 1.5 MiB; shorten what the session carries "
                              "(prompt, environment variables, repos)")


def service(session: Mapping[str, Any], workload: Mapping[str, Any], kind: Resource,
            port: int) -> Obj:
    """``session-<n>``: ClusterIP, selecting the runner (the Pod, or the VM's virt-launcher
    pod, whose labels come from the VM's template), port ``agui``; owned by the workload."""
    namespace, name = meta(session)
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": service_name(name), "namespace": namespace,
                         "labels": {APP_LABEL: SERVICE_APP, SESSION_LABEL: name},
                         "ownerReferences": [owner_reference(workload, kind)]},
            "spec": {"type": "ClusterIP", "selector": selector_labels(name),
                     "ports": [{"name": AGUI_PORT_NAME, "protocol": "TCP", "port": port,
                                "targetPort": port}]}}


def service_port(service_obj: Mapping[str, Any] | None) -> int:
    """The ``agui`` port of the session's Service, 8001 without one (as upstream reads it)."""
    for port in ((service_obj or {}).get("spec") or {}).get("ports") or ():
        if isinstance(port, Mapping) and port.get("name") == AGUI_PORT_NAME:
            number = port.get("port")
            if isinstance(number, int) and not isinstance(number, bool):
                return number
    return DEFAULT_PORT


def agui_port(workload: Mapping[str, Any]) -> int | None:
    """The port named ``agui`` a workload declares (a Pod's container port, a VM's interface
    port): what its Service must point at, whatever the registry says now. Where a Pod and a
    VirtualMachine declare ports is looked at first; any other shape is searched whole."""
    spec = workload.get("spec")
    for ports in _declared_ports(spec):
        for port in ports if isinstance(ports, list) else ():
            if isinstance(port, Mapping) and port.get("name") == AGUI_PORT_NAME:
                number = port.get("containerPort", port.get("port"))
                if isinstance(number, int) and not isinstance(number, bool):
                    return number
    stack: list[Any] = [spec]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            if node.get("name") == AGUI_PORT_NAME:
                number = node.get("containerPort", node.get("port"))
                if isinstance(number, int) and not isinstance(number, bool):
                    return number
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None


def _declared_ports(spec: Any) -> Iterator[Any]:
    """The port lists of a Pod's containers and of a VirtualMachine's interfaces."""
    for owners in (_at(spec, "containers"),
                   _at(spec, "template", "spec", "domain", "devices", "interfaces")):
        for owner in owners if isinstance(owners, list) else ():
            if isinstance(owner, Mapping):
                yield owner.get("ports")


def _at(node: Any, *keys: str) -> Any:
    """``node[k1][k2]...`` through mappings only; None where the path breaks."""
    for key in keys:
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node


def service_account(session: Mapping[str, Any]) -> Obj:
    _, name = meta(session)
    annotations = {}
    user_id = ((session.get("spec") or {}).get("userContext") or {}).get("userId")
    if isinstance(user_id, str) and user_id:
        annotations[CREATED_BY_USER_ID] = user_id
    metadata = _runner_meta(session, service_account_name(name))
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata}


def _runner_meta(session: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Metadata of the runner's RBAC objects: labelled ``app=ambient-runner`` (upstream
    labels only the ServiceAccount; the label is ours, for ``kubectl get -l``) and owned by
    the session."""
    return {"name": name, "namespace": meta(session)[0], "labels": {APP_LABEL: RUNNER_SA_APP},
            "ownerReferences": [session_owner(session)]}


def role(session: Mapping[str, Any]) -> Obj:
    _, name = meta(session)
    return {"apiVersion": ROLES.api_version, "kind": ROLES.kind,
            "metadata": _runner_meta(session, role_name(name)),
            "rules": [{key: list(values) for key, values in rule.items()}
                      for rule in RUNNER_RULES]}


def role_binding(session: Mapping[str, Any]) -> Obj:
    namespace, name = meta(session)
    return {"apiVersion": ROLE_BINDINGS.api_version, "kind": ROLE_BINDINGS.kind,
            "metadata": _runner_meta(session, role_binding_name(name)),
            "roleRef": {"apiGroup": ROLES.group, "kind": ROLES.kind, "name": role_name(name)},
            "subjects": [{"kind": "ServiceAccount", "name": service_account_name(name),
                          "namespace": namespace}]}


def token_secret(session: Mapping[str, Any], *, k8s_token: str, agui_token: str,
                 refreshed_at: str) -> Obj:
    """``ambient-runner-token-<n>``: the ServiceAccount's token and the AG-UI token."""
    namespace, name = meta(session)
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": token_secret_name(name), "namespace": namespace,
                         "labels": {APP_LABEL: TOKEN_SECRET_APP},
                         "annotations": {TOKEN_REFRESHED_AT: refreshed_at},
                         "ownerReferences": [session_owner(session)]},
            "data": {K8S_TOKEN_KEY: _b64(k8s_token), AGUI_TOKEN_KEY: _b64(agui_token)}}


def refreshed_token_patch(k8s_token: str, refreshed_at: str) -> Obj:
    """The merge patch that puts a new ``k8s-token`` into the token Secret (agui-token kept)."""
    return {"metadata": {"annotations": {TOKEN_REFRESHED_AT: refreshed_at}},
            "data": {K8S_TOKEN_KEY: _b64(k8s_token)}}


def network_policy(namespace: str, backend_namespace: str) -> Obj:
    """``runner-allow-backend-only``: runner pods accept only the backend's namespace, on
    8001 (upstream's port, whatever the registry says)."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": NETWORK_POLICY_NAME, "namespace": namespace,
                         "labels": {APP_LABEL: SERVICE_APP, MANAGED_BY: "operator"}},
            "spec": {"podSelector": {"matchLabels": {APP_LABEL: RUNNER_APP}},
                     "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {
                         "kubernetes.io/metadata.name": backend_namespace}}}],
                         "ports": [{"protocol": "TCP", "port": DEFAULT_PORT}]}]}}


def copied_secret(source: Mapping[str, Any], namespace: str, session: Mapping[str, Any], *,
                  controller: bool) -> Obj:
    """A platform Secret copied into a session's namespace, annotated with where it came
    from (only such copies are ever deleted) and owned by the session."""
    src = source["metadata"]
    metadata: dict[str, Any] = {
        "name": src["name"], "namespace": namespace,
        "annotations": {COPIED_FROM: f"{src.get('namespace', '')}/{src['name']}"},
        "ownerReferences": [owner_reference(session, AGENTIC_SESSIONS, controller=controller)]}
    if src.get("labels"):
        metadata["labels"] = dict(src["labels"])
    return {"apiVersion": "v1", "kind": "Secret", "type": source.get("type") or "Opaque",
            "metadata": metadata, "data": dict(source.get("data") or {})}


def secret_value(secret: Mapping[str, Any] | None, key: str) -> str:
    """A Secret's value under ``key`` (decoded; "" when absent or not valid base64)."""
    raw = ((secret or {}).get("data") or {}).get(key)
    if not isinstance(raw, str):
        return ""
    try:
        return base64.b64decode(raw, validate=True).decode("utf-8", "replace")
    except ValueError:
        return ""


def owned_by(obj: Mapping[str, Any] | None, owner_uid: str) -> bool:
    refs = ((obj or {}).get("metadata") or {}).get("ownerReferences") or ()
    return any(isinstance(r, Mapping) and r.get("uid") == owner_uid for r in refs)


def owned_by_predecessor(obj: Mapping[str, Any] | None, session: Mapping[str, Any]) -> bool:
    """Owned by an earlier session of this name (deleted and re-created): garbage collection
    is removing it, so a wait, not a conflict."""
    m = session["metadata"]
    refs = ((obj or {}).get("metadata") or {}).get("ownerReferences") or ()
    return any(isinstance(r, Mapping) and r.get("kind") == AGENTIC_SESSIONS.kind
               and r.get("name") == m["name"] and r.get("uid") != m.get("uid") for r in refs)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()
