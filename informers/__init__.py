"""informers: the project's client-go.

REST access to the API server in raw JSON, the reflector (list then watch), a thread-safe indexed
store and shared informers. It builds on ``metrics`` and ``foundation``
(time and threads) only.
"""

from .apiwarnings import WarningHandler, WarningLogger, parse_warning_headers
from .change import Change
from .errors import (
    AlreadyExists,
    APIError,
    Conflict,
    Gone,
    Invalid,
    KubeError,
    NotFound,
    ServerError,
    TooManyRequests,
    TransportError,
)
from .factory import InformerFactory, InformerKey
from .informer import (
    ChangeHandler,
    DeletedFinalStateUnknown,
    EventHandler,
    Handlers,
    Registration,
    SharedInformer,
)
from .reflector import Reflector, ReflectorHealth, ReflectorObserver, ReflectorOptions
from .resource import (
    CONFIGMAPS,
    EVENTS,
    LEASES,
    NAMESPACES,
    PODS,
    SECRETS,
    SERVICES,
    Resource,
)
from .rest import (
    ResourceClient,
    Transport,
    TransportOptions,
    WriteGuard,
    load_configuration,
)
from .restmapper import NoKindMatch, RESTMapper
from .store import (
    CONTROLLER_INDEX,
    NAMESPACE_INDEX,
    IndexFunc,
    MutatedCacheError,
    Store,
    key_of,
)
from .watchstream import WatchEvents

__all__ = [
    "CONFIGMAPS",
    "CONTROLLER_INDEX",
    "EVENTS",
    "LEASES",
    "NAMESPACES",
    "NAMESPACE_INDEX",
    "PODS",
    "SECRETS",
    "SERVICES",
    "APIError",
    "AlreadyExists",
    "Change",
    "ChangeHandler",
    "Conflict",
    "DeletedFinalStateUnknown",
    "EventHandler",
    "Gone",
    "Handlers",
    "IndexFunc",
    "InformerFactory",
    "InformerKey",
    "Invalid",
    "KubeError",
    "MutatedCacheError",
    "NoKindMatch",
    "NotFound",
    "RESTMapper",
    "Reflector",
    "ReflectorHealth",
    "ReflectorObserver",
    "ReflectorOptions",
    "Registration",
    "Resource",
    "ResourceClient",
    "ServerError",
    "SharedInformer",
    "Store",
    "TooManyRequests",
    "Transport",
    "TransportError",
    "TransportOptions",
    "WarningHandler",
    "WarningLogger",
    "WatchEvents",
    "WriteGuard",
    "key_of",
    "load_configuration",
    "parse_warning_headers",
]
