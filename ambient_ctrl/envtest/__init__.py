"""``ambient_ctrl.envtest``: the local API server's public names under the framework's path.

controller-runtime users look for ``envtest`` under the framework, and code written before the
server became its own top-level package (``envtest``) imports it from here. It is an alias
only: importing it loads the framework (``ambient_ctrl``) and the server; the operator imports
neither path. New code imports ``envtest``.
"""

from envtest import Cluster, ListenError, LocalAPIServer, ServerOptions, event_loop_name, serve

__all__ = ["Cluster", "ListenError", "LocalAPIServer", "ServerOptions", "event_loop_name",
           "serve"]
