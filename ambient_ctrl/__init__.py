"""ambient_ctrl: a Kubernetes reconciler framework in the style of controller-runtime.

It holds what an operator author programs against (reconcile contract, workqueue, controllers,
cached client, manager, helpers). It builds on ``informers``, ``metrics`` and ``foundation``
(time, threads, selectors) and never imports ``reconcilers``. The local Kubernetes API server
for tests, benchmarks and the demo is a package of its own, ``envtest`` (``ambient_ctrl.envtest``
is an alias of its public names); the framework runs without it.
"""

from .builder import Builder, ControllerHost
from .client import Client
from .conditions import find_condition, is_false, is_true, remove_condition, set_condition
from .controller import Controller, ControllerOptions
from .createorupdate import (
    MutateKeyError,
    OperationResult,
    create_or_patch,
    create_or_update,
    merge_patch_between,
)
from .events import EventRecorder
from .expectations import Expectations
from .finalizers import add_finalizer, has_finalizer, remove_finalizer, with_finalizer
from .handler import Batch
from .leaderelection import NotLeaderError
from .manager import Manager, ManagerOptions
from .ownerref import (
    AlreadyOwnedError,
    CrossNamespaceOwnerError,
    OwnerReferenceError,
    controller_of,
    is_controlled_by,
    set_controller_reference,
    set_owner_reference,
)
from .predicate import (
    AnnotationsChanged,
    Funcs,
    GenerationChanged,
    LabelsChanged,
    Predicate,
    ResourceVersionChanged,
    and_,
    not_,
    or_,
)
from .ratelimit import (
    BucketRateLimiter,
    ItemExponentialRateLimiter,
    MaxOfRateLimiter,
    RateLimiter,
    default_controller_rate_limiter,
)
from .reconcile import Reconciler, ReconcileTimeout, Request, Result, TerminalError
from .retry import GiveUp, Retry, RetryPolicy, Terminal, record_condition
from .timer import Timer
from .workqueue import LOW_PRIORITY, NORMAL_PRIORITY, WorkQueue

__all__ = [
    "LOW_PRIORITY",
    "NORMAL_PRIORITY",
    "AlreadyOwnedError",
    "AnnotationsChanged",
    "Batch",
    "BucketRateLimiter",
    "Builder",
    "Client",
    "Controller",
    "ControllerHost",
    "ControllerOptions",
    "CrossNamespaceOwnerError",
    "EventRecorder",
    "Expectations",
    "Funcs",
    "GenerationChanged",
    "GiveUp",
    "ItemExponentialRateLimiter",
    "LabelsChanged",
    "Manager",
    "ManagerOptions",
    "MaxOfRateLimiter",
    "MutateKeyError",
    "NotLeaderError",
    "OperationResult",
    "OwnerReferenceError",
    "Predicate",
    "RateLimiter",
    "ReconcileTimeout",
    "Reconciler",
    "Request",
    "ResourceVersionChanged",
    "Result",
    "Retry",
    "RetryPolicy",
    "Terminal",
    "TerminalError",
    "Timer",
    "WorkQueue",
    "add_finalizer",
    "and_",
    "controller_of",
    "create_or_patch",
    "create_or_update",
    "default_controller_rate_limiter",
    "find_condition",
    "has_finalizer",
    "is_controlled_by",
    "is_false",
    "is_true",
    "merge_patch_between",
    "not_",
    "or_",
    "record_condition",
    "remove_condition",
    "remove_finalizer",
    "set_condition",
    "set_controller_reference",
    "set_owner_reference",
    "with_finalizer",
]
