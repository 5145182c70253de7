"""Platform Secrets copied into session namespaces: Vertex AI credentials, Langfuse and MLflow
settings (``shared/UPSTREAM-CONTRACT.md`` §4.13).

When the operator's configuration enables one, a run starts with a copy of the Secret from the
backend's namespace in the session's namespace, annotated ``vteam.ambient-code/copied-from``
and owned by the session (the first one as controller; later sessions are added as owners, so
garbage collection removes the copy with its last session). When a run ends, a copy is deleted
if no other session of the namespace is Pending, Creating or Running. Only annotated copies are
ever changed or deleted: a Secret of that name that someone else made is used as it is. When
the backend runs in the session's own namespace there is nothing to copy.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from ambient_ctrl.client import Client, ScopedCache
from informers.errors import AlreadyExists, NotFound
from informers.resource import SECRETS

from .children import copied_secret, meta, owned_by, owner_reference, secret_value
from .config import OperatorConfig
from .resources import AGENTIC_SESSIONS, COPIED_FROM, MLFLOW_SECRET, VERTEX_SECRET, Phase

log = logging.getLogger(__name__)
ACTIVE = frozenset({Phase.PENDING.value, Phase.CREATING.value, Phase.RUNNING.value})
KUBERNETES_AUTH = frozenset({"kubernetes", "kubernetes-namespaced"})


class PlatformSecrets:
    """The enabled platform Secrets, each read through a cache of that name everywhere."""

    def __init__(self, client: Client, config: OperatorConfig,
                 caches: Mapping[str, ScopedCache]) -> None:
        self._client = client
        self._config = config
        self._caches = caches

    def source(self, name: str) -> Mapping[str, Any] | None:
        return self._caches[name].get(name, self._config.backend_namespace)

    def present(self, namespace: str) -> frozenset[str]:
        """The enabled platform Secrets a run in ``namespace`` gets (copied, or to be)."""
        return frozenset(name for name in self._config.platform_secrets
                         if self._caches[name].get(name, namespace) is not None
                         or self.source(name) is not None)

    def vertex_missing(self) -> str:
        """Why Vertex AI cannot be used ("" when it can, or is off)."""
        if not self._config.vertex or self.source(VERTEX_SECRET) is not None:
            return ""
        namespace = self._config.backend_namespace
        return (f"USE_VERTEX is enabled but {VERTEX_SECRET} secret not found in namespace "
                f"{namespace}. Create it with: kubectl create secret generic {VERTEX_SECRET} "
                f"--from-file=ambient-code-key.json=/path/to/sa.json -n {namespace}")

    def mlflow_kubernetes_auth(self, namespace: str) -> bool:
        """MLflow's copy asks for Kubernetes auth: the runner then gets its ServiceAccount."""
        if MLFLOW_SECRET not in self._caches:
            return False
        secret = self._caches[MLFLOW_SECRET].get(MLFLOW_SECRET, namespace) or \
            self.source(MLFLOW_SECRET)
        return secret_value(secret, "MLFLOW_TRACKING_AUTH").strip() in KUBERNETES_AUTH

    def copy(self, session: Mapping[str, Any]) -> None:
        """Copy each enabled Secret into the session's namespace (or add the session as an
        owner of the copy there)."""
        namespace, _ = meta(session)
        if namespace == self._config.backend_namespace:
            return
        for name in self._config.platform_secrets:
            source = self.source(name)
            if source is None:
                continue
            copy = self._caches[name].get(name, namespace)
            if copy is None:
                # AlreadyExists: made a moment ago; the next run's copy adds this session.
                with contextlib.suppress(AlreadyExists):
                    self._client.create(SECRETS, copied_secret(source, namespace, session,
                                                               controller=True))
            elif _copied(copy) and not owned_by(copy, session["metadata"]["uid"]):
                refs = list((copy.get("metadata") or {}).get("ownerReferences") or ())
                controlled = any(r.get("controller") for r in refs)
                refs.append(owner_reference(session, AGENTIC_SESSIONS, controller=not controlled))
                self._client.patch(SECRETS, name, {
                    "metadata": {"resourceVersion": copy["metadata"]["resourceVersion"],
                                 "ownerReferences": refs},
                    "data": dict(source.get("data") or {})}, namespace)

    def release(self, session: Mapping[str, Any]) -> None:
        """Delete the copies in the session's namespace if no other session there is active."""
        namespace, name = meta(session)
        if namespace == self._config.backend_namespace:
            return
        others = [s for s in self._client.list(AGENTIC_SESSIONS, namespace=namespace)
                  if s["metadata"]["name"] != name
                  and (s.get("status") or {}).get("phase") in ACTIVE]
        if others:
            return
        for secret in self._config.platform_secrets:
            copy = self._caches[secret].get(secret, namespace)
            if copy is None or not _copied(copy):
                continue
            try:
                self._client.delete(SECRETS, secret, namespace)
                log.info("deleted the copy of a platform Secret: no active session uses it",
                         extra={"secret": f"{namespace}/{secret}"})
            except NotFound:
                pass


def _copied(secret: Mapping[str, Any]) -> bool:
    return COPIED_FROM in ((secret.get("metadata") or {}).get("annotations") or {})
