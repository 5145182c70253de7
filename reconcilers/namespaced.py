"""The namespace-scoped mode: the namespaces served, and their grants (``ambient-ctrl rbac``).

``run --namespace a,b`` makes the operator work in those namespaces only, each watched on its
own (:func:`watched_namespaces` reads the list; ``ManagerOptions.cache_namespaces`` does the
rest), so it needs grants there and none cluster-wide but the Namespace watch (config/namespaced).
The list is fixed at start.

In that mode nothing grants the operator cluster-wide access to namespaced kinds: the
ClusterRole ``agenticsession-operator-namespaced`` holds the rules, and a RoleBinding to it in
each namespace the operator serves grants them there only. Kustomize cannot repeat an object
per namespace, so this command prints them::

    ambient-ctrl rbac --namespace team-a --namespace team-b | kubectl apply -f -

one RoleBinding per namespace, and the ConfigMap ``agenticsession-operator-namespaces`` in the
operator's namespace whose list the Deployment passes to ``run --namespace`` (so the grants and
the namespaces watched come from one list). Pure rendering: it reads nothing from a cluster.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable
from typing import Any

import yaml

OPERATOR_NAMESPACE = "ambient-code"
SERVICE_ACCOUNT = "agenticsession-operator"
CLUSTER_ROLE = "agenticsession-operator-namespaced"
BINDING = "agenticsession-operator"
NAMESPACES_CONFIGMAP = "agenticsession-operator-namespaces"
NAMESPACES_KEY = "namespaces"
LABELS = {"app.kubernetes.io/part-of": "ambient-code",
          "app.kubernetes.io/managed-by": "ambient-ctrl-rbac"}
"""On every object printed: ``kubectl delete rolebinding -A -l
app.kubernetes.io/managed-by=ambient-ctrl-rbac`` takes the grants back."""


def watched_namespaces(values: Iterable[str]) -> tuple[str, ...]:
    """``--namespace``'s values (each a comma-separated list) as one sorted tuple, empty for
    every namespace; ValueError for a name no namespace can have."""
    names = sorted({name.strip() for value in values for name in value.split(",")
                    if name.strip()})
    bad = [name for name in names if not _DNS_LABEL.fullmatch(name)]
    if bad:
        raise ValueError(f"--namespace {', '.join(bad)}: not a namespace name (lower-case "
                         "letters, digits and '-', at most 63)")
    return tuple(names)


_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def render(namespaces: Iterable[str], *, operator_namespace: str = OPERATOR_NAMESPACE,
           service_account: str = SERVICE_ACCOUNT,
           cluster_role: str = CLUSTER_ROLE) -> list[dict[str, Any]]:
    """The ConfigMap listing ``namespaces``, then a RoleBinding of ``cluster_role`` to the
    operator's ServiceAccount in each (sorted; ValueError for an empty list or a bad name)."""
    names = watched_namespaces(namespaces)
    if not names:
        raise ValueError("name at least one namespace (--namespace)")
    configmap = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": NAMESPACES_CONFIGMAP, "namespace": operator_namespace,
                              "labels": dict(LABELS)},
                 "data": {NAMESPACES_KEY: ",".join(names)}}
    bindings = [{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                 "metadata": {"name": BINDING, "namespace": namespace, "labels": dict(LABELS)},
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                             "name": cluster_role},
                 "subjects": [{"kind": "ServiceAccount", "name": service_account,
                               "namespace": operator_namespace}]}
                for namespace in names]
    return [configmap, *bindings]


def _rbac(args: argparse.Namespace) -> int:
    try:
        objects = render(args.namespace or (), operator_namespace=args.operator_namespace,
                         service_account=args.service_account, cluster_role=args.cluster_role)
    except ValueError as error:
        print(f"ambient-ctrl rbac: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(yaml.safe_dump_all(objects, sort_keys=False))
    return 0


def register(commands: Any) -> None:
    """Add ``ambient-ctrl rbac`` (entry point ``ambient_ctrl.commands``)."""
    parser = commands.add_parser(
        "rbac", help="print the RoleBindings of the namespace-scoped mode (config/namespaced)",
        description="The grants of the namespace-scoped mode (config/namespaced), as YAML "
                    "for kubectl apply -f -: a RoleBinding to the ClusterRole "
                    f"{CLUSTER_ROLE} in each namespace, and the ConfigMap "
                    f"{NAMESPACES_CONFIGMAP} the Deployment reads the list from.")
    parser.add_argument("--namespace", "--namespaces", action="append", metavar="NS[,NS...]",
                        help="a namespace the operator serves (repeat, or comma-separate; at least "
                             "one, no default)")
    parser.add_argument("--operator-namespace", default=OPERATOR_NAMESPACE,
                        help=f"the operator's namespace (default {OPERATOR_NAMESPACE})")
    parser.add_argument("--service-account", default=SERVICE_ACCOUNT,
                        help=f"the operator's ServiceAccount (default {SERVICE_ACCOUNT})")
    parser.add_argument("--cluster-role", default=CLUSTER_ROLE,
                        help=f"the ClusterRole bound in each namespace (default {CLUSTER_ROLE})")
    parser.set_defaults(run=_rbac)
