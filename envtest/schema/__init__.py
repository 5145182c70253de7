"""CRD structural schemas applied to custom resources and the ``fieldValidation`` of unknown
fields in what a client writes.

:func:`admit` runs kube-apiserver's three steps on a custom resource (:mod:`.structural` says
how and where this differs from kube): pruning (:mod:`.prune`), nulls and defaults
(:mod:`.defaults`), validation by kube-openapi's keywords (:mod:`.keywords`, string formats in
:mod:`.formats`) and in field.Path form (:mod:`.listtypes`); causes are worded by
:mod:`.causes`, paths walked by :mod:`.tree`. :mod:`.fieldvalidation` is the
``fieldValidation`` parameter (Strict, Warn, Ignore).
"""

from envtest.schema.structural import admit, apply_defaults, prune, validate
from envtest.schema.tree import NO_FIELD, Schema

__all__ = ["NO_FIELD", "Schema", "admit", "apply_defaults", "prune", "validate"]
