"""The PATCH dialects kube-apiserver accepts besides apply, as pure functions on decoded JSON.

* :func:`merge_patch` — JSON merge patch (RFC 7386, ``application/merge-patch+json``);
* :func:`json_patch` — JSON patch (RFC 6902, ``application/json-patch+json``);
* :func:`strategic_merge_patch` — Kubernetes strategic merge patch
  (``application/strategic-merge-patch+json``) for the built-in kinds in
  :data:`STRATEGIC_MERGE_KINDS`.

kube-apiserver applies the first two with ``gopkg.in/evanphx/json-patch.v4`` and the third
with ``k8s.io/apimachinery/pkg/util/strategicpatch``; where those libraries differ from the
RFCs, each module follows the libraries (the differences are listed on each function).

No function mutates its arguments. Merge results are new containers along every path a patch
touches, sharing the subtrees of ``target`` it leaves alone; a JSON patch works on a copy of
``target``. Values taken from a patch are always copied. Treat results as immutable or copy
them.

Errors: :class:`PatchError` means the patch cannot be applied (the server answers 422, or 400
when the body is not a patch at all); :class:`PatchTestFailed` means a JSON-patch ``test``
operation did not hold (422); :class:`TooManyOperations`, a JSON patch past kube-apiserver's
bound (413). Server-side apply, which merges by field ownership, is a verb
(``envtest.verbs.apply``).
"""

from envtest.patch.errors import PatchError
from envtest.patch.jsonpatch import (
    MAX_COPY_BYTES,
    MAX_JSON_PATCH_OPERATIONS,
    PatchTestFailed,
    TooManyOperations,
    json_patch,
)
from envtest.patch.merge import merge_patch
from envtest.patch.strategic import STRATEGIC_MERGE_KINDS, strategic_merge_patch

__all__ = [
    "MAX_COPY_BYTES",
    "MAX_JSON_PATCH_OPERATIONS",
    "STRATEGIC_MERGE_KINDS",
    "PatchError",
    "PatchTestFailed",
    "TooManyOperations",
    "json_patch",
    "merge_patch",
    "strategic_merge_patch",
]
