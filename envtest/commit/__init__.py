"""The commit layer: the one path by which anything — a REST verb, server-side apply, the
garbage collector, a simulator, the server's own bootstrap — changes what the server stores.

It carries kube-apiserver's storage rules for every kind: server-owned metadata, generation,
the status subresource split, optimistic concurrency, no-op detection (an unchanged write gets
no new resourceVersion and no event) and finalizers (:mod:`.create`, :mod:`.update`,
:mod:`.delete`, :mod:`.binding`). What a kind adds to its own lifecycle — a CRD registering
its kind and deleting its objects before it goes, a namespace emptying itself — is that kind's
hooks (:mod:`.hooks`, :mod:`.crds`, :mod:`.namespaces`, :mod:`.webhooks`), not branches of
the generic path. Creates and updates come in two steps — prepare (complete and validate) and
store — so that validating admission webhooks can run between them (:mod:`envtest.verbs.admit`);
``commit_create``/``commit_update`` do both at once.
The verbs above it parse requests and check preconditions; nothing here speaks HTTP.
"""

from envtest.commit import crds, namespaces, webhooks
from envtest.commit.binding import commit_binding
from envtest.commit.create import check_create, commit_create, prepare_create, store_create
from envtest.commit.delete import begin_delete, remove
from envtest.commit.hooks import BuiltinHooks, HookTable, install
from envtest.commit.stored import current
from envtest.commit.update import commit_update, prepare_update, store_update

install(HookTable(builtin=BuiltinHooks(), custom=crds.CUSTOM_RESOURCES,
                  by_store={crds.STORE: crds.HOOKS, namespaces.STORE: namespaces.HOOKS,
                            **webhooks.HOOKS},
                  on_removed=(namespaces.content_removed,)))

__all__ = ["begin_delete", "check_create", "commit_binding", "commit_create", "commit_update",
           "current", "prepare_create", "prepare_update", "remove", "store_create",
           "store_update"]
