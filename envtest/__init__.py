"""envtest: a local Kubernetes API server for tests, benchmarks and the demo.

No kube-apiserver can be installed on our machines, so the project ships its own: an HTTP/1.1
server on 127.0.0.1 that speaks enough of the Kubernetes REST API for kubectl, the ``kubernetes``
Python client and kopf to work against it unchanged — discovery, OpenAPI v3, built-in kinds,
CRDs, get/list/watch/create/update/patch/delete with their real semantics.

Run it in-process with :class:`LocalAPIServer` or as a process with ``ambient-ctrl apiserver``.
"""

from envtest.cluster import Cluster, ServerOptions
from envtest.server import ListenError, LocalAPIServer, event_loop_name, serve

__all__ = ["Cluster", "ListenError", "LocalAPIServer", "ServerOptions", "event_loop_name",
           "serve"]
