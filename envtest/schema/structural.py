"""CRD structural schemas applied to custom resources: pruning, defaulting, validation.

kube-apiserver handles every custom resource body it is about to store (create, update,
patch) in three steps, and :func:`admit` repeats them, in the same order, on the private
copy the caller hands in:

1. **Pruning** (apiextensions-apiserver ``schema/pruning``): fields not declared in
   ``properties`` (or as ``additionalProperties`` map values) are dropped. A node with
   ``x-kubernetes-preserve-unknown-fields`` keeps its *unknown* fields, but fields it does
   declare are still pruned by their own schema. ``apiVersion``, ``kind`` and ``metadata``
   are never pruned at the root nor in ``x-kubernetes-embedded-resource`` objects.
2. **Nulls and defaults** (``schema/defaulting``): a ``null`` for a field that is not
   ``nullable`` and has no ``default`` is removed, as if absent; then ``default`` fills absent
   fields, and non-nullable nulls, in objects that exist. Defaults are applied top-down, so
   a default inside an absent object only appears if the object itself is defaulted.
   Default values are pruned against their schema (kube prunes them when it loads the CRD).
3. **Validation** (kube-openapi ``validate``, converted to field errors by apiextensions
   ``apiserver/validation``; then ``schema/objectmeta`` for embedded resources and
   ``schema/listtype``): ``type``/``nullable``/``format``, ``x-kubernetes-int-or-string``,
   ``allOf``/``anyOf``/``oneOf``/``not``, string, number, array and object keywords,
   ``enum``, ``required``, ``x-kubernetes-embedded-resource`` (apiVersion and kind) and
   ``x-kubernetes-list-type`` ``set``/``map`` uniqueness.

``x-kubernetes-validations`` (CEL rules) are **not evaluated**: there is no CEL interpreter
here, so objects that only a CEL rule would reject are accepted.

Root ``metadata`` belongs to the API server's ObjectMeta handling, not to this module: it is
never pruned here, and of its schema only the ``name``/``generateName`` declarations (the only
ones a CRD may make) are used, for nulls, defaults and checks.

Errors are :class:`~envtest.errors.Cause` values carrying kube's field path,
reason and message body, because clients (kubectl, controller tests) match on them. Their
shapes follow kube exactly, quirks included: keyword failures use kube-openapi's paths
(``spec.items[2].name``; map values as ``spec.labels.key``, since kube-openapi joins map keys
with a dot), while the list-type and embedded-resource checks use field.Path form
(``spec.labels[key]``); failures kube reports without a path (``anyOf``/``oneOf``/``allOf``/
``not``, numeric range overflows) carry the field ``<nil>``, as kube prints it; a value can
fail several keywords and then yields several causes (kube reports a wrong type and a failed
``enum`` separately); ``null`` never satisfies an ``enum``, as in kube-openapi.

Why an own validator rather than ``jsonschema``/``fastjsonschema``: those implement JSON
Schema drafts, not OpenAPI 3.0 as kube reads it (``nullable``, boolean
``exclusiveMinimum``, the ``x-kubernetes-*`` extensions, kube's lenient integer/float and
format rules), and their error paths and texts are not kube's; mapping their output back to
kube's wording per keyword would be as large as checking the keywords directly, and pruning
and defaulting are outside their scope anyway.

Deliberate deviations: numeric bounds and ``multipleOf`` are compared exactly (kube truncates
a fractional bound to an integer when the value is a JSON integer); ``anyOf``/``oneOf``
report the failures of the alternative with the fewest errors (kube's "best match" counts
passed checks); ``pattern`` uses Python's ``re`` (RE2 syntax mostly agrees); the ``email``,
``uri`` and ``hostname`` formats approximate Go's parsers; integers and floats of equal value
compare equal in ``enum``, ``uniqueItems`` and list-type checks; metadata of embedded
resources is not pruned or validated.

**Ratcheting** (kube's ``CRDValidationRatcheting``, on by default since 1.30): on an update, a
value unchanged from the stored object passes the keyword checks whatever it holds, so a
schema tightened after an object was stored does not lock the object (a status write is not
refused for a spec it did not touch). Values are matched as kube matches them through object
properties and map values (same key); kube also matches the items of ``listType: map`` lists
by their keys and of ``set`` lists by value, which this does not (an unchanged item of a
changed such list is still checked), nor does it ratchet the list-type and embedded-resource
checks. It also keeps status writes cheap: the spec they carry unchanged is not walked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from envtest.errors import Cause
from envtest.schema.defaults import default_value, drop_nulls
from envtest.schema.keywords import validate_value
from envtest.schema.listtypes import check_embedded, check_list_type, walk
from envtest.schema.prune import prune_value
from envtest.schema.tree import Schema, root_schema

__all__ = ["admit", "apply_defaults", "prune", "validate"]


def admit(schema: Schema | None, obj: dict[str, Any],
          old: Mapping[str, Any] | None = None) -> list[Cause]:
    """Prune, default and validate ``obj`` (mutated in place) like kube-apiserver.

    ``schema`` is a CRD version's ``openAPIV3Schema``; without one nothing is done. ``old``:
    the stored object, on an update (its unchanged values are not held against ``obj``: see
    :func:`validate`). Returns the validation failures, empty when the object may be stored.
    """
    if schema is None:
        return []
    prune_value(obj, schema, embedded=True)
    apply_defaults(schema, obj)
    return validate(schema, obj, old)


def prune(schema: Schema, obj: dict[str, Any]) -> list[str]:
    """Drop the fields of ``obj`` that ``schema`` does not declare (in place); return their
    paths (what ``fieldValidation`` calls unknown fields)."""
    pruned: list[str] = []
    prune_value(obj, schema, True, pruned)  # kube treats the root as an embedded resource
    return pruned


def apply_defaults(schema: Schema, obj: dict[str, Any]) -> None:
    """Remove non-nullable nulls without default, then apply defaults (in place)."""
    root = root_schema(schema)
    drop_nulls(obj, root)
    default_value(obj, root)


def validate(schema: Schema, obj: dict[str, Any],
             old: Mapping[str, Any] | None = None) -> list[Cause]:
    """Check ``obj`` against ``schema``; one cause per failed check, in kube's terms. With
    ``old`` (an update), the keyword checks ratchet: a value unchanged from ``old`` passes."""
    root = root_schema(schema)
    causes = validate_value(root, obj, "") if old is None else validate_value(
        root, obj, "", old)
    if not _has_tree_checks(schema):
        return causes
    nodes = list(walk(root, obj, ""))
    for node, value, path in nodes:
        if isinstance(value, dict) and node.get("x-kubernetes-embedded-resource"):
            causes.extend(check_embedded(value, path))
    for node, value, path in nodes:
        if isinstance(value, list):
            causes.extend(check_list_type(node, value, path))
    return causes


_TREE_KEYWORDS = ("x-kubernetes-embedded-resource", "x-kubernetes-list-type")
_TREE_CHECKS: dict[int, tuple[Schema, bool]] = {}
"""Schemas (by identity; at most :data:`_TREE_CHECKS_LIMIT`) → whether they declare any of
:data:`_TREE_KEYWORDS`: a schema that declares none (most) needs no walk of every value for
the embedded-resource and list-type checks."""
_TREE_CHECKS_LIMIT = 256


def _has_tree_checks(schema: Schema) -> bool:
    hit = _TREE_CHECKS.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    found = _declares(schema)
    if len(_TREE_CHECKS) >= _TREE_CHECKS_LIMIT:
        _TREE_CHECKS.clear()
    _TREE_CHECKS[id(schema)] = (schema, found)
    return found


def _declares(node: Any) -> bool:
    """Whether any mapping in ``node`` sets one of :data:`_TREE_KEYWORDS` (defaults and
    examples included: a false positive only costs the walk)."""
    if isinstance(node, Mapping):
        return any(node.get(key) for key in _TREE_KEYWORDS) or any(
            _declares(value) for value in node.values())
    if isinstance(node, list):
        return any(_declares(value) for value in node)
    return False
