"""Server-side apply (``application/apply-patch+yaml``): create when absent, merge when present,
record each field manager's fields in ``metadata.managedFields``.

The merge and the ownership rules are structured-merge-diff's (:mod:`envtest.patch.managed`,
:mod:`envtest.patch.structured`): keyed lists (``listType=map``, or a built-in field's
``patchMergeKey``) and ``listType=set`` lists are owned item by item, other lists whole; a field
the applier stops applying is removed unless another manager owns it; a field another manager
owns whose value the apply changes is a conflict (409) unless ``force=true``, which moves it.
Which lists are keyed comes from :mod:`envtest.patch.shapes` (a built-in kind without a table
there: only ObjectMeta's lists are keyed, every other list is atomic).
"""

from __future__ import annotations

import asyncio
from typing import Any

from envtest import errors
from envtest.cluster import Cluster, Target
from envtest.codecs.body import check_depth, decode_patch
from envtest.commit import check_create
from envtest.errors import Cause
from envtest.http.protocol import Answer, Request, Response
from envtest.kinds import crds
from envtest.kinds.objects import check_type_meta
from envtest.patch import PatchError, fieldpath, managed
from envtest.patch.managed import Conflicts
from envtest.schema import fieldvalidation
from envtest.verbs import ownership
from envtest.verbs.admit import Plan, admit, create_plan, update_plan


def server_side_apply(cluster: Cluster, target: Target, request: Request, applied: Any,
                      mode: str = fieldvalidation.DEFAULT) -> Answer | asyncio.Future[Answer]:
    """Apply ``applied`` (the decoded patch); admitted as a CREATE or an UPDATE."""
    first = [applied]

    def build() -> Plan:  # an attempt after the object changed decodes the patch anew
        document = first.pop() if first else decode_patch(request, builtin=target.rtype.builtin)[1]
        return _apply_plan(cluster, target, request, document, mode)

    return admit(cluster, target, request, build)


def _apply_plan(cluster: Cluster, target: Target, request: Request, applied: Any,
                mode: str) -> Plan:
    stored = cluster.store.get(target.rtype.store, (target.namespace, target.name))
    live: dict[str, Any] = {} if stored is None else crds.served(target.rtype, stored.load())
    new, warnings = merged(cluster, target, request, applied, mode, live)
    return applied_plan(cluster, target, request, live, new, warnings)


def merged(cluster: Cluster, target: Target, request: Request, applied: Any, mode: str,
           live: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The object the apply makes of ``live`` (``{}``: none yet), with its managedFields;
    and the warnings of the field validation."""
    rtype = target.rtype
    name = ownership.manager_name(request, required=True)
    meta = check_type_meta(rtype, applied)
    if meta.get("name", target.name) != target.name:
        raise errors.bad_request(f"the name of the object ({meta.get('name')}) does not match "
                                 f"the name on the URL ({target.name})")
    if meta.get("managedFields") is not None:
        raise errors.bad_request("metadata.managedFields must be nil")
    meta["name"] = target.name
    meta.pop("resourceVersion", None)
    # Unknown fields are neither stored nor owned. (kube's apply refuses them whatever the
    # directive, "field not declared in schema"; here the directive decides, see
    # fieldvalidation.)
    warnings = fieldvalidation.check(rtype, applied, mode, patched=True)
    me = ownership.entry(cluster, target, name, "Apply")
    if not live and target.subresource:
        raise errors.not_found(rtype.plural, rtype.group, target.name)
    try:
        new, owners = managed.apply(live, applied, ownership.shape(rtype),
                                    managed.owners(live.get("metadata", {}).get(
                                        "managedFields")),
                                    me, force=request.flag("force"),
                                    ignored=ownership.ignored(target))
    except Conflicts as exc:
        raise _conflict(target, exc) from exc
    except PatchError as exc:
        raise errors.invalid(rtype.kind, rtype.group, target.name,
                             [Cause("patch", f"Invalid value: {exc}")]) from exc
    check_depth(new, "the applied object")
    new["metadata"]["managedFields"] = managed.entries(owners)
    return new, warnings


def applied_plan(cluster: Cluster, target: Target, request: Request, live: dict[str, Any],
                 new: dict[str, Any], warnings: list[str]) -> Plan:
    """Create ``new`` (``live`` is ``{}``) or store it over ``live``."""
    if not live:
        return create_plan(cluster, target, request, check_create(cluster, target, new),
                           warnings, lambda body: Response(201, body))
    return update_plan(cluster, target, request, live, new, warnings, Response)


def _conflict(target: Target, exc: Conflicts) -> errors.APIError:
    causes = tuple(Cause(fieldpath.render(c.path), f'conflict with "{c.manager}"',
                         "FieldManagerConflict") for c in exc.conflicts)
    return errors.APIError(409, "Conflict", str(exc), name=target.name,
                           group=target.rtype.group, kind=target.rtype.plural, causes=causes)
