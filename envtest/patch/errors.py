"""What the patch dialects share: their error root, and how an error shows a value."""

from __future__ import annotations

from typing import Any

MISSING: Any = object()
"""No value at all (a JSON-patch ``test`` without ``value``, a path that is not there)."""


class PatchError(ValueError):
    """The patch document is malformed or does not apply to the target."""


def brief(value: Any) -> str:
    """``value`` for an error message, cut to 80 characters."""
    text = "no value" if value is MISSING else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
