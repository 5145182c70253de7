"""What the Table printers of every kind share: column definitions, reading a cell's value from
a JSON object by a dotted path, and kube's renderings of selectors, label maps and lists.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Row = Callable[[Mapping[str, Any]], list[Any]]
"""The cells of one object's row, its name excluded."""

NAME = {"name": "Name", "type": "string", "format": "name",
        "description": "Name must be unique within a namespace.", "priority": 0}
AGE = {"name": "Age", "type": "date", "format": "",
       "description": "CreationTimestamp of the object.", "priority": 0}


def col(name: str, kind: str = "string", priority: int = 0) -> dict[str, Any]:
    return {"name": name, "type": kind, "format": "", "description": name, "priority": priority}


def get(obj: Any, path: str) -> Any:
    for part in path.strip(".").split("."):
        if not part:
            continue
        if isinstance(obj, Mapping):
            obj = obj.get(part)
        elif isinstance(obj, list) and part.isdigit() and int(part) < len(obj):
            obj = obj[int(part)]
        else:
            return None
    return obj


def age(obj: Mapping[str, Any]) -> Any:
    return get(obj, "metadata.creationTimestamp")


def format_label_selector(selector: Any) -> str:
    """A LabelSelector as kubectl prints it (``metav1.FormatLabelSelector``): requirements
    sorted by key, ``k=v``, ``k in (a,b)``, ``k notin (a)``, ``k``, ``!k``; ``<none>`` for the
    empty selector (which selects everything) and ``<error>`` for one that cannot parse."""
    if not isinstance(selector, Mapping):
        return "<none>" if selector is None else "<error>"
    requirements: list[tuple[str, str]] = []
    for key, value in (selector.get("matchLabels") or {}).items():
        requirements.append((str(key), f"{key}={value}"))
    for expression in selector.get("matchExpressions") or ():
        if not isinstance(expression, Mapping):
            return "<error>"
        key, operator = str(expression.get("key", "")), expression.get("operator")
        values = sorted(str(v) for v in expression.get("values") or ())
        if operator in ("In", "NotIn") and values:
            joined = values[0] if len(values) == 1 else ",".join(values)
            requirements.append((key, f"{key} {operator.lower()} ({joined})"))
        elif operator == "Exists" and not values:
            requirements.append((key, key))
        elif operator == "DoesNotExist" and not values:
            requirements.append((key, f"!{key}"))
        else:
            return "<error>"
    requirements.sort(key=lambda r: r[0])
    return ",".join(text for _, text in requirements) or "<none>"


def format_labels(labels: Any) -> str:
    """A label map as kube prints it (``labels.FormatLabels``): ``k=v`` sorted by key, joined
    by commas; ``<none>`` when empty."""
    if not isinstance(labels, Mapping) or not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def join_or(values: Any, empty: str = "<none>") -> str:
    """Strings joined by commas, ``empty`` for none."""
    return ",".join(str(v) for v in values or ()) or empty
