"""Descriptions for the built-in kinds' OpenAPI schemas (:mod:`.openapi`), which ``kubectl
explain`` prints: kube's own texts (from the Go types' comments), shortened, for the kinds,
the fields every object has, ObjectMeta's, and the fields users look up first. A field not
listed here has its type only.
"""

from __future__ import annotations

from typing import Final

_CONVENTIONS: Final = "https://git.k8s.io/community/contributors/devel/sig-architecture/" \
    "api-conventions.md"
API_VERSION: Final = (
    "APIVersion defines the versioned schema of this representation of an object. Servers "
    "should convert recognized schemas to the latest internal value, and may reject "
    f"unrecognized values. More info: {_CONVENTIONS}#resources")
KIND: Final = (
    "Kind is a string value representing the REST resource this object represents. Servers "
    "may infer this from the endpoint the client submits requests to. Cannot be updated. In "
    f"CamelCase. More info: {_CONVENTIONS}#types-kinds")
METADATA: Final = f"Standard object's metadata. More info: {_CONVENTIONS}#metadata"
_SPEC: Final = f"Specification of the desired behavior. More info: {_CONVENTIONS}#spec-and-status"
_STATUS: Final = ("Most recently observed status. Populated by the system. Read-only. More info: "
                  f"{_CONVENTIONS}#spec-and-status")

_MESSAGES: Final = {
    "ConfigMap": "ConfigMap holds configuration data for pods to consume.",
    "Secret": "Secret holds secret data of a certain type. The total bytes of the values in "
              "the Data field must be less than MaxSecretSize bytes.",
    "Namespace": "Namespace provides a scope for Names. Use of multiple namespaces is "
                 "optional.",
    "ServiceAccount": "ServiceAccount binds together: a name, understood by users, and perhaps "
                      "by peripheral systems, for an identity; a principal that can be "
                      "authenticated and authorized; a set of secrets.",
    "Pod": "Pod is a collection of containers that can run on a host. This resource is created "
           "by clients and scheduled onto hosts.",
    "Service": "Service is a named abstraction of software service (for example, mysql) "
               "consisting of local port (for example 3306) that the proxy listens on, and the "
               "selector that determines which pods will answer requests sent through the "
               "proxy.",
    "Event": "Event is a report of an event somewhere in the cluster.",
    "Endpoints": "Endpoints is a collection of endpoints that implement the actual service.",
    "LimitRange": "LimitRange sets resource usage limits for each kind of resource in a "
                  "Namespace.",
    "Deployment": "Deployment enables declarative updates for Pods and ReplicaSets.",
    "StatefulSet": "StatefulSet represents a set of pods with consistent identities. The "
                   "StatefulSet guarantees that a given network identity will always map to "
                   "the same storage identity.",
    "DaemonSet": "DaemonSet represents the configuration of a daemon set.",
    "ReplicaSet": "ReplicaSet ensures that a specified number of pod replicas are running at "
                  "any given time.",
    "Job": "Job represents the configuration of a single job.",
    "ReplicationController": "ReplicationController represents the configuration of a "
                             "replication controller.",
    "Node": "Node is a worker node in Kubernetes. Each node will have a unique identifier in "
            "the cache (i.e. in etcd).",
    "PersistentVolume": "PersistentVolume (PV) is a storage resource provisioned by an "
                        "administrator. It is analogous to a node.",
    "StorageClass": "StorageClass describes the parameters for a class of storage for which "
                    "PersistentVolumes can be dynamically provisioned.",
    "Ingress": "Ingress is a collection of rules that allow inbound connections to reach the "
               "endpoints defined by a backend. An Ingress can be configured to give services "
               "externally-reachable urls, load balance traffic, terminate SSL, offer name "
               "based virtual hosting etc.",
    "IngressClass": "IngressClass represents the class of the Ingress, referenced by the "
                    "Ingress Spec.",
    "PodDisruptionBudget": "PodDisruptionBudget is an object to define the max disruption that "
                           "can be caused to a collection of pods",
    "HorizontalPodAutoscaler": "HorizontalPodAutoscaler is the configuration for a horizontal "
                               "pod autoscaler, which automatically manages the replica count "
                               "of any resource implementing the scale subresource based on "
                               "the metrics specified.",
    "ValidatingWebhookConfiguration": "ValidatingWebhookConfiguration describes the "
                                      "configuration of and admission webhook that accept or "
                                      "reject and object without changing it.",
    "MutatingWebhookConfiguration": "MutatingWebhookConfiguration describes the configuration "
                                    "of and admission webhook that accept or reject and may "
                                    "change the object.",
    "CronJob": "CronJob represents the configuration of a single cron job.",
    "PersistentVolumeClaim": "PersistentVolumeClaim is a user's request for and claim to a "
                             "persistent volume",
    "SelfSubjectAccessReview": "SelfSubjectAccessReview checks whether or the current user can "
                               "perform an action.  Not filling in a spec.namespace means \"in "
                               "all namespaces\".  Self is a special case, because users "
                               "should always be able to check whether they can perform an "
                               "action",
    "SelfSubjectRulesReview": "SelfSubjectRulesReview enumerates the set of actions the "
                              "current user can perform within a namespace.",
    "SubjectAccessReview": "SubjectAccessReview checks whether or not a user or group can "
                           "perform an action.",
    "LocalSubjectAccessReview": "LocalSubjectAccessReview checks whether or not a user or "
                                "group can perform an action in a given namespace.",
    "Role": "Role is a namespaced, logical grouping of PolicyRules that can be referenced as a "
            "unit by a RoleBinding.",
    "ClusterRole": "ClusterRole is a cluster level, logical grouping of PolicyRules that can be "
                   "referenced as a unit by a RoleBinding or ClusterRoleBinding.",
    "RoleBinding": "RoleBinding references a role, but does not contain it. It adds who "
                   "information via Subjects and namespace information by which namespace it "
                   "exists in.",
    "ClusterRoleBinding": "ClusterRoleBinding references a ClusterRole, but not contain it. It "
                          "can reference a ClusterRole in the global namespace, and adds who "
                          "information via Subject.",
    "NetworkPolicy": "NetworkPolicy describes what network traffic is allowed for a set of "
                     "Pods.",
    "TokenRequest": "TokenRequest requests a token for a given service account.",
    "ObjectMeta": "ObjectMeta is metadata that all persisted resources must have, which "
                  "includes all objects users must create.",
    "OwnerReference": "OwnerReference contains enough information to let you identify an "
                      "owning object. An owning object must be in the same namespace as the "
                      "dependent, or be cluster-scoped, so there is no namespace field.",
    "PodSpec": "PodSpec is a description of a pod.",
    "Container": "A single application container that you want to run within a pod.",
    "Time": "Time is a wrapper around time.Time which supports correct marshaling to YAML and "
            "JSON. Wrappers are provided for many of the factory methods that the time package "
            "offers.",
    "Quantity": "Quantity is a fixed-point representation of a number, such as 100m or 1Gi.",
    "IntOrString": "IntOrString is a type that can hold an int32 or a string.",
}

_FIELDS: Final = {
    ("ObjectMeta", "name"): "Name must be unique within a namespace. Is required when creating "
                            "resources, although some resources may allow a client to request "
                            "the generation of an appropriate name automatically. Cannot be "
                            "updated.",
    ("ObjectMeta", "generateName"): "GenerateName is an optional prefix, used by the server, to "
                                    "generate a unique name ONLY IF the Name field has not been "
                                    "provided.",
    ("ObjectMeta", "namespace"): "Namespace defines the space within which each name must be "
                                 "unique. An empty namespace is equivalent to the \"default\" "
                                 "namespace. Cannot be updated.",
    ("ObjectMeta", "uid"): "UID is the unique in time and space value for this object. It is "
                           "generated by the server on successful creation of a resource and "
                           "is not allowed to change on PUT operations. Read-only.",
    ("ObjectMeta", "resourceVersion"): "An opaque value that represents the internal version of "
                                       "this object that can be used by clients to determine "
                                       "when objects have changed. Read-only.",
    ("ObjectMeta", "generation"): "A sequence number representing a specific generation of the "
                                  "desired state. Populated by the system. Read-only.",
    ("ObjectMeta", "creationTimestamp"): "CreationTimestamp is a timestamp representing the "
                                         "server time when this object was created. Read-only.",
    ("ObjectMeta", "deletionTimestamp"): "DeletionTimestamp is RFC 3339 date and time at which "
                                         "this resource will be deleted. Set by the server when "
                                         "a graceful deletion is requested. Read-only.",
    ("ObjectMeta", "labels"): "Map of string keys and values that can be used to organize and "
                              "categorize (scope and select) objects.",
    ("ObjectMeta", "annotations"): "Annotations is an unstructured key value map stored with a "
                                   "resource that may be set by external tools to store and "
                                   "retrieve arbitrary metadata.",
    ("ObjectMeta", "ownerReferences"): "List of objects depended by this object. If ALL objects "
                                       "in the list have been deleted, this object will be "
                                       "garbage collected.",
    ("ObjectMeta", "finalizers"): "Must be empty before the object is deleted from the "
                                  "registry. Each entry is an identifier for the responsible "
                                  "component that will remove the entry from the list.",
    ("ObjectMeta", "managedFields"): "ManagedFields maps workflow-id and version to the set of "
                                     "fields that are managed by that workflow.",
    ("ConfigMap", "data"): "Data contains the configuration data. Each key must consist of "
                           "alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 "
                           "byte sequences must use the BinaryData field.",
    ("ConfigMap", "binaryData"): "BinaryData contains the binary data. Each key must consist of "
                                 "alphanumeric characters, '-', '_' or '.'.",
    ("ConfigMap", "immutable"): "Immutable, if set to true, ensures that data stored in the "
                                "ConfigMap cannot be updated (only object metadata can be "
                                "modified).",
    ("Secret", "data"): "Data contains the secret data. Each key must consist of alphanumeric "
                        "characters, '-', '_' or '.'. The serialized form of the secret data "
                        "is a base64 encoded string.",
    ("Secret", "stringData"): "stringData allows specifying non-binary secret data in string "
                              "form. It is provided as a write-only input field for "
                              "convenience; it is merged into the data field on write.",
    ("Secret", "type"): "Used to facilitate programmatic handling of secret data.",
    ("Secret", "immutable"): "Immutable, if set to true, ensures that data stored in the Secret "
                             "cannot be updated (only object metadata can be modified).",
    ("PodSpec", "containers"): "List of containers belonging to the pod. Containers cannot "
                               "currently be added or removed. There must be at least one "
                               "container in a Pod. Cannot be updated.",
    ("PodSpec", "initContainers"): "List of initialization containers belonging to the pod, "
                                   "executed in order before the containers are started.",
    ("PodSpec", "volumes"): "List of volumes that can be mounted by containers belonging to "
                            "the pod.",
    ("PodSpec", "serviceAccountName"): "ServiceAccountName is the name of the ServiceAccount to "
                                       "use to run this pod.",
    ("PodSpec", "nodeName"): "NodeName indicates in which node this pod is scheduled.",
    ("PodSpec", "restartPolicy"): "Restart policy for all containers within the pod. One of "
                                  "Always, OnFailure, Never. Default to Always.",
    ("Container", "name"): "Name of the container specified as a DNS_LABEL. Each container in a "
                           "pod must have a unique name (DNS_LABEL). Cannot be updated.",
    ("Container", "image"): "Container image name.",
    ("Container", "command"): "Entrypoint array. Not executed within a shell. The container "
                              "image's ENTRYPOINT is used if this is not provided.",
    ("Container", "args"): "Arguments to the entrypoint. The container image's CMD is used if "
                           "this is not provided.",
    ("Container", "env"): "List of environment variables to set in the container. Cannot be "
                          "updated.",
    ("Container", "ports"): "List of ports to expose from the container.",
    ("Container", "resources"): "Compute Resources required by this container. Cannot be "
                                "updated.",
    ("Container", "volumeMounts"): "Pod volumes to mount into the container's filesystem. "
                                   "Cannot be updated.",
    ("Container", "securityContext"): "SecurityContext defines the security options the "
                                      "container should be run with.",
}


def message(name: str) -> str | None:
    """The description of a kind's or a type's schema, if there is one."""
    return _MESSAGES.get(name)


def field(owner: str, name: str, *, top_level: bool) -> str | None:
    """The description of field ``name`` of message ``owner``: its own, else, of a kind
    (``top_level``), the one every ``spec`` and ``status`` has."""
    text = _FIELDS.get((owner, name))
    if text is None and top_level and name in ("spec", "status"):
        return _SPEC if name == "spec" else _STATUS
    return text
