"""Bounds on what a request may make the server build: nesting depth and YAML alias expansion.

The body size is bounded at the HTTP layer (3 MiB, kube-apiserver's limit, answered with 413) and
the stored size in :mod:`storage` (etcd's 1.5 MiB request limit); these two bound the rest:

* **Nesting depth.** kube-apiserver's JSON decoder refuses documents nested deeper than 10,000
  levels. Ours is :data:`MAX_DEPTH` = 100 containers (objects and arrays), because the code
  behind the decoder cannot go much further: the patch and schema functions recurse about three
  Python frames per level, and orjson refuses to serialise beyond 255 levels, which a stored
  object must stay well under (a Table or a list wraps it in a few more). No Kubernetes object
  comes near 100 levels; the deepest CRD schemas are around 40. A body deeper than that, or a
  patch whose result is, gets 400 BadRequest.
* **YAML aliases.** A few anchors referring to each other ("billion laughs") expand a body of a
  few hundred bytes into millions of nodes. go-yaml, which decodes YAML bodies in
  kube-apiserver, fails such documents with "document contains excessive aliasing" once alias
  expansion makes up too large a share of the nodes decoded; :func:`check_yaml_aliasing` applies
  the same rule (on the totals rather than as decoding goes) and the request gets 400. The
  rule counts nodes, not bytes: a hundred aliases of one long string pass it, so the expanded
  size is bounded as well, by the 3 MiB a body may have (413 beyond). kube-apiserver would
  expand such a body and fail later, at etcd's 1.5 MiB limit; refusing it up front keeps the
  expansion out of memory.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_DEPTH = 100
"""Containers (objects and arrays) a request body or a stored object may nest."""
MAX_YAML_EXPANSION_BYTES = 3 * 1024 * 1024
"""What a YAML body may grow to once its aliases are expanded (about its JSON size)."""

_ALIAS_RATIO_LOW = 400_000
_ALIAS_RATIO_HIGH = 4_000_000


class LimitExceeded(ValueError):
    """A body beyond one of the bounds above; the message says which (400 BadRequest)."""


class ExpansionTooLarge(LimitExceeded):
    """A YAML body whose aliases expand beyond :data:`MAX_YAML_EXPANSION_BYTES` (413)."""


def nested_deeper_than(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` nests more than ``limit`` containers; iterative, stops at the first
    container past the bound."""
    if not isinstance(value, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                if depth >= limit:
                    return True
                push((child, depth + 1))
    return False


def check_depth(value: Any) -> None:
    if nested_deeper_than(value):
        raise LimitExceeded(f"exceeded max depth of {MAX_DEPTH} nested objects and arrays")


def may_nest_deeper_than(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """False when ``raw`` JSON holds too few brackets to nest beyond ``limit`` (no parse)."""
    return raw.count(b"{") + raw.count(b"[") > limit


def _allowed_alias_ratio(decoded: int) -> float:
    """go-yaml's allowedAliasRatio: 99% of nodes may come from aliases in documents up to
    400,000 nodes, falling linearly to 10% at 4,000,000."""
    if decoded <= _ALIAS_RATIO_LOW:
        return 0.99
    if decoded >= _ALIAS_RATIO_HIGH:
        return 0.10
    return 0.99 - 0.89 * (decoded - _ALIAS_RATIO_LOW) / (_ALIAS_RATIO_HIGH - _ALIAS_RATIO_LOW)


def check_yaml_aliasing(root: yaml.Node) -> None:
    """Refuse a composed YAML document whose aliases expand too much (go-yaml's rule).

    An alias is the same node object as its anchor, so the expanded size of every node is
    computed once (post-order, no recursion) and shared: the cost is the document's size, not
    its expansion.
    """
    sizes: dict[int, tuple[int, int]] = {}  # node id -> (nodes, bytes) once expanded
    open_nodes: set[int] = set()  # entered, children not all sized yet
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes:
            continue
        children = _children(node)
        if children_done or not children:
            expanded = [sizes[id(child)] for child in children]
            own = len(node.value) + 3 if isinstance(node, yaml.ScalarNode) else 2
            sizes[key] = (1 + sum(n for n, _ in expanded), own + sum(b for _, b in expanded))
            open_nodes.discard(key)
            continue
        if key in open_nodes:  # reached from inside itself: a recursive alias
            raise LimitExceeded("yaml: anchor value contains itself")
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)
    decoded, size = sizes[id(root)]
    from_aliases = decoded - len(sizes)
    if from_aliases > 100 and decoded > 1000 and (
            from_aliases / decoded > _allowed_alias_ratio(decoded)):
        raise LimitExceeded("yaml: document contains excessive aliasing")
    if size > MAX_YAML_EXPANSION_BYTES:
        raise ExpansionTooLarge(f"the YAML body expands to about {size} bytes with its aliases; "
                                f"the limit is {MAX_YAML_EXPANSION_BYTES}")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
