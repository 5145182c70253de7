"""Predicates: what each one lets through, per event type, and how they combine."""

from __future__ import annotations

from typing import Any

import pytest

from ambient_ctrl.predicate import (
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


def obj(*, generation: int = 1, rv: str = "1", labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "o", "namespace": "ns", "generation": generation,
                            "resourceVersion": rv}
    if labels is not None:
        meta["labels"] = labels
    if annotations is not None:
        meta["annotations"] = annotations
    return {"metadata": meta}


BASE = obj()
NO = Funcs(on_create=lambda o: False, on_update=lambda o, n: False, on_delete=lambda o: False)
"""A predicate that lets nothing through."""

UPDATES: list[tuple[str, Predicate, dict[str, Any], dict[str, Any], bool]] = [
    ("generation-same", GenerationChanged, BASE, obj(rv="2", labels={"a": "b"}), False),
    ("generation-moved", GenerationChanged, BASE, obj(generation=2, rv="2"), True),
    ("rv-resync", ResourceVersionChanged, BASE, obj(), False),
    ("rv-moved", ResourceVersionChanged, BASE, obj(rv="2"), True),
    ("labels-same", LabelsChanged, obj(labels={"a": "b"}), obj(rv="2", labels={"a": "b"}), False),
    ("labels-absent-vs-empty", LabelsChanged, BASE, obj(rv="2", labels={}), False),
    ("labels-added", LabelsChanged, BASE, obj(rv="2", labels={"a": "b"}), True),
    ("labels-value-changed", LabelsChanged, obj(labels={"a": "b"}), obj(labels={"a": "c"}),
     True),
    ("labels-ignores-annotations", LabelsChanged, BASE, obj(annotations={"x": "y"}), False),
    ("annotations-same", AnnotationsChanged, obj(annotations={"x": "y"}),
     obj(rv="2", annotations={"x": "y"}), False),
    ("annotations-absent-vs-empty", AnnotationsChanged, BASE, obj(annotations={}), False),
    ("annotations-removed", AnnotationsChanged, obj(annotations={"x": "y"}), BASE, True),
    ("annotations-ignore-labels", AnnotationsChanged, BASE, obj(labels={"a": "b"}), False),
    ("funcs-default-lets-through", Funcs(), BASE, obj(), True),
    ("funcs-on-update", Funcs(on_update=lambda o, n: n["metadata"]["resourceVersion"] == "9"),
     BASE, obj(rv="9"), True),
    ("funcs-on-update-refuses", Funcs(on_update=lambda o, n: False), BASE, obj(rv="2"), False),
    ("and-all-pass", and_(LabelsChanged, ResourceVersionChanged), BASE,
     obj(rv="2", labels={"a": "b"}), True),
    ("and-one-fails", and_(LabelsChanged, GenerationChanged), BASE,
     obj(rv="2", labels={"a": "b"}), False),
    ("and-empty", and_(), BASE, obj(), True),
    ("or-one-passes", or_(GenerationChanged, LabelsChanged), BASE, obj(labels={"a": "b"}), True),
    ("or-none-passes", or_(GenerationChanged, LabelsChanged), BASE, obj(rv="2"), False),
    ("or-empty", or_(), BASE, obj(), False),
    ("not-negates", not_(GenerationChanged), BASE, obj(rv="2"), True),
    ("not-negates-a-pass", not_(GenerationChanged), BASE, obj(generation=2), False),
    ("nested", or_(and_(LabelsChanged, not_(GenerationChanged)), AnnotationsChanged), BASE,
     obj(labels={"a": "b"}), True),
]


@pytest.mark.parametrize(("predicate", "old", "new", "expected"),
                         [case[1:] for case in UPDATES], ids=[case[0] for case in UPDATES])
def test_update(predicate: Predicate, old: dict[str, Any], new: dict[str, Any],
                expected: bool) -> None:
    assert predicate.update(old, new) is expected


CREATES_AND_DELETES: list[tuple[str, Predicate, bool]] = [
    ("generation", GenerationChanged, True),
    ("resource-version", ResourceVersionChanged, True),
    ("labels", LabelsChanged, True),
    ("annotations", AnnotationsChanged, True),
    ("funcs-default", Funcs(), True),
    ("funcs-refusing", NO, False),
    ("and-with-a-refusal", and_(GenerationChanged, NO), False),
    ("or-with-a-pass", or_(NO, LabelsChanged), True),
    ("not-of-a-pass", not_(LabelsChanged), False),
    ("not-of-a-refusal", not_(NO), True),
]
"""The update-only predicates let creates and deletes through (controller-runtime's)."""


@pytest.mark.parametrize(("predicate", "expected"), [case[1:] for case in CREATES_AND_DELETES],
                         ids=[case[0] for case in CREATES_AND_DELETES])
def test_create_and_delete(predicate: Predicate, expected: bool) -> None:
    assert predicate.create(BASE) is expected
    assert predicate.delete(BASE) is expected


def test_funcs_call_the_function_of_the_event_with_its_objects() -> None:
    seen: list[tuple[str, Any]] = []
    funcs = Funcs(on_create=lambda o: seen.append(("create", o)) is None,
                  on_update=lambda o, n: seen.append(("update", (o, n))) is None,
                  on_delete=lambda o: seen.append(("delete", o)) is None)
    other = obj(rv="2")
    assert funcs.create(BASE) and funcs.update(BASE, other) and funcs.delete(other)
    assert seen == [("create", BASE), ("update", (BASE, other)), ("delete", other)]
