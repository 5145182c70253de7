"""The protobuf schema as data: every group's field tables merged, and compiled for the codec.

A group's module (:mod:`.core`, :mod:`.apps`, :mod:`.batch`, :mod:`.autoscaling`, :mod:`.policy`,
:mod:`.networking`, :mod:`.storage`, :mod:`.rbac`, :mod:`.admission`, :mod:`.authentication`,
:mod:`.authorization`) maps each message name to field number →
(JSON name, type, flags), in the order the Go struct declares its fields (the order
encoding/json writes them). Types are proto scalars, the codec's special types (Time,
MicroTime, Quantity, IntOrString, FieldsV1, ExtraValue) or another message. Flags: ``*``
repeated, ``%`` map<string, type>, then one rule letter as :class:`Field` describes (``o`` is
the default and left out). To extend, copy the json and protobuf struct tags from upstream
``types.go`` (pointer, omitempty and omitzero decide the rule) and check against
``generated.proto``. Message names must be unique across groups.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from envtest.codecs.protobuf import (
    admission,
    apps,
    authentication,
    authorization,
    autoscaling,
    batch,
    core,
    networking,
    policy,
    rbac,
    storage,
)

_GROUPS: Final = (core, apps, batch, autoscaling, policy, networking, storage, rbac, admission,
                  authentication, authorization)

SUPPORTED_KINDS: Final = frozenset().union(*(group.KINDS for group in _GROUPS))
"""(apiVersion, kind) of every object a protobuf body may hold."""


class Field(NamedTuple):
    """One field of a message in :data:`FIELDS`: its number on the wire, its JSON name
    (empty for an embedded struct), the message or builtin type it holds, and how it is
    rendered."""

    number: int
    name: str
    type: str
    repeated: bool
    is_map: bool
    # How encoding/json treats the Go field: "o" omitempty (drop zero values), "p" pointer
    # with omitempty (drop only when unset), "z" omitzero, "k" always rendered (zero value
    # when unset), "n" rendered as null when unset, "^" embedded struct merged into parent.
    rule: str


def merge_messages(*groups: dict[str, dict[int, tuple[str, str, str]]],
                   ) -> dict[str, dict[int, tuple[str, str, str]]]:
    """One table of all groups' messages (decode_object looks a kind up by its bare name);
    ValueError if two groups define a message of the same name."""
    merged: dict[str, dict[int, tuple[str, str, str]]] = {}
    for tables in groups:
        for name, fields in tables.items():
            if name in merged:
                raise ValueError(f"protobuf message {name} is defined by two API groups")
            merged[name] = fields
    return merged


MESSAGES: Final = merge_messages(*(group.MESSAGES for group in _GROUPS))
"""Every supported message by name: field number → (JSON name, type, flags), as upstream's
``generated.proto`` and Go struct tags have them (the schema the decoder, the OpenAPI
documents and field validation share)."""


def _compile(number: int, spec: tuple[str, str, str]) -> Field:
    name, type_, flags = spec
    return Field(number, name, type_, "*" in flags, "%" in flags, flags.lstrip("*%") or "o")


FIELDS: Final[dict[str, dict[int, Field]]] = {
    message: {number: _compile(number, spec) for number, spec in fields.items()}
    for message, fields in MESSAGES.items()
}
""":data:`MESSAGES` compiled: message name → field number → :class:`Field`."""
